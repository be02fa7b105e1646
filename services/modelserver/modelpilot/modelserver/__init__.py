"""The model server: one MLflow pyfunc model behind the Open Inference Protocol v2 and `/predict`.

Every transport delegates to one `dataplane.DataPlane` (the KServe/MLServer shape): the REST
inference routes (`rest`, served ahead of the FastAPI app in `app`) and gRPC (`grpcserver`) decode
into the protocol's types (`oip`) and back, so the endpoints hold no logic.
"""
