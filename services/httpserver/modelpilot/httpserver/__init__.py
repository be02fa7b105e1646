"""The server frame the router and the model server share: ASGI pieces (`asgi`: the body limit,
validation messages) and the process start (`launch`: settings from the environment, the inference
and admin ports under uvicorn).

Below both services and free of either's dependencies (no MLflow, no Redis): it moved here from
the model server (issue 14, item 5) so that the router no longer imports the model server, and
import-linter's independence contract keeps router, modelserver and driftjob apart.
"""
