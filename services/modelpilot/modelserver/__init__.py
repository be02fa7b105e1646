"""The model server: one MLflow pyfunc model behind the Open Inference Protocol v2 and `/predict`.

Every transport delegates to one `dataplane.DataPlane` (the KServe/MLServer shape): the FastAPI app
in `app` only translates HTTP to data-plane calls, so the endpoints hold no logic.
"""
