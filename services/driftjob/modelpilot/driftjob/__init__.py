"""The drift CronJob's command: `modelpilot drift run --deployment NAME --namespace NS`.

Pure builders (`status`: the status patch, the condition, the Event) are kept apart from the
input/output (`collect`: the model servers' windows over HTTP and the pods from the API; `job`: the
run, MLflow, the status write, the Pushgateway).
"""
