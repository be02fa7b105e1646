{{/*
Helpers shared by every template (names, labels, images), after the conventions of cert-manager's
chart: a name truncated to 63 characters (the DNS label limit), the standard app.kubernetes.io labels
on every object, and selector labels that never change across upgrades.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "modelpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, suffixed with the chart name unless it already contains
it; truncated to 63 characters because some Kubernetes name fields are limited to that (DNS-1123).
*/}}
{{- define "modelpilot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name and version as used by the helm.sh/chart label. */}}
{{- define "modelpilot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels on every object. */}}
{{- define "modelpilot.labels" -}}
helm.sh/chart: {{ include "modelpilot.chart" . }}
{{ include "modelpilot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelpilot
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels (immutable on Deployments: never add a value that can change). */}}
{{- define "modelpilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of one component: include with (dict "ctx" $ "component" "operator"). */}}
{{- define "modelpilot.componentLabels" -}}
{{ include "modelpilot.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelpilot.componentSelectorLabels" -}}
{{ include "modelpilot.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Names of the components' objects. */}}
{{- define "modelpilot.operator.fullname" -}}
{{- printf "%s-operator" (include "modelpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelpilot.mlflow.fullname" -}}
{{- printf "%s-mlflow" (include "modelpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelpilot.pushgateway.fullname" -}}
{{- printf "%s-pushgateway" (include "modelpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelpilot.feedbackStore.fullname" -}}
{{- printf "%s-feedback-store" (include "modelpilot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Redis/Valkey URL the routers count rewards in: the external one, the chart's, or none. */}}
{{- define "modelpilot.feedbackStore.url" -}}
{{- if .Values.feedbackStore.externalUrl }}
{{- .Values.feedbackStore.externalUrl }}
{{- else if .Values.feedbackStore.enabled }}
{{- printf "redis://%s.%s.svc:%v/0" (include "modelpilot.feedbackStore.fullname" .) .Release.Namespace .Values.feedbackStore.service.port }}
{{- end }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "modelpilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelpilot.operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace the operator watches in namespace scope (the release namespace by default). */}}
{{- define "modelpilot.watchNamespace" -}}
{{- default .Release.Namespace .Values.operator.watchNamespace }}
{{- end }}

{{/*
An image reference from {repository, tag, digest}: the digest wins, the tag defaults to the chart's
appVersion. Include with (dict "image" .Values.operator.image "ctx" $).
*/}}
{{- define "modelpilot.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
kopf's peering name: operator.peeringName, or the fullname when more than one replica runs (one
active, the others standing by); empty means standalone.
*/}}
{{- define "modelpilot.peeringName" -}}
{{- if .Values.operator.peeringName }}
{{- .Values.operator.peeringName }}
{{- else if gt (int .Values.operator.replicas) 1 }}
{{- include "modelpilot.fullname" . }}
{{- end }}
{{- end }}

{{/* The MLflow tracking URI the operator uses by default. */}}
{{- define "modelpilot.trackingUri" -}}
{{- if .Values.operator.mlflowTrackingUri }}
{{- .Values.operator.mlflowTrackingUri }}
{{- else if .Values.mlflow.enabled }}
{{- printf "http://%s.%s.svc:%d" (include "modelpilot.mlflow.fullname" .) .Release.Namespace (int .Values.mlflow.service.port) }}
{{- else }}
{{- "http://mlflow.mlops:5000" }}
{{- end }}
{{- end }}

{{/*
A CRD from files/crds/ (verbatim copies of manifests/crds/, kept equal by `make chart-sync` and a
test) with the chart's labels and, when crds.keep is set, helm.sh/resource-policy: keep so that
`helm uninstall` never deletes users' ModelDeployments and Experiments with their CRD.
Include with (dict "ctx" $ "file" "modeldeployments.modelpilot.io.yaml").
*/}}
{{- define "modelpilot.crd" -}}
{{- $crd := .ctx.Files.Get (printf "files/crds/%s" .file) | fromYaml }}
{{- $labels := merge (include "modelpilot.labels" .ctx | fromYaml) (default dict $crd.metadata.labels) }}
{{- $_ := set $crd.metadata "labels" $labels }}
{{- if .ctx.Values.crds.keep }}
{{- $_ := set $crd.metadata "annotations" (merge (dict "helm.sh/resource-policy" "keep") (default dict $crd.metadata.annotations)) }}
{{- end }}
{{- toYaml $crd }}
{{- end }}
