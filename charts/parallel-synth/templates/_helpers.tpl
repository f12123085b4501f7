{{/* Chart name, overridable. */}}
{{- define "ps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: "<release>-parallel-synth", or the release name when it already holds the chart name. */}}
{{- define "ps.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ps.operatorName" -}}
{{- printf "%s-operator" (include "ps.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ps.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ps.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ps.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "ps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: parallel-synth
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ps.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* A list of maps as comma-separated values of one key: (dict "items" LIST "key" "name"). */}}
{{- define "ps.csv" -}}
{{- $out := list -}}
{{- range .items }}{{ $out = append $out (get . $.key) }}{{ end -}}
{{- join "," $out -}}
{{- end -}}

{{/* Namespaces that get the renderer ServiceAccount: the release's, the watched ones, the extra ones. */}}
{{- define "ps.rendererNamespaces" -}}
{{- $all := list .Release.Namespace -}}
{{- range .Values.operator.watchNamespaces }}{{ $all = append $all . }}{{ end -}}
{{- range .Values.renderer.namespaces }}{{ $all = append $all . }}{{ end -}}
{{- $all | uniq | toJson -}}
{{- end -}}

{{/*
The operator's rules over namespaced resources; the same in the ClusterRole (all namespaces)
and in each Role (watched namespaces). No Secrets: rendering pods get S3 credentials through
secretKeyRef, which the kubelet resolves.
*/}}
{{- define "ps.namespacedRules" -}}
# SynthDatasets: read and watch; patch metadata (kopf finalizers, annotations) and status only.
- apiGroups: [parallelsynth.io]
  resources: [synthdatasets]
  verbs: [get, list, watch, patch]
- apiGroups: [parallelsynth.io]
  resources: [renderbatches]
  verbs: [get, list, watch, patch, create, delete]
- apiGroups: [parallelsynth.io]
  resources: [synthdatasets/status, renderbatches/status]
  verbs: [patch]
# blockOwnerDeletion on children needs update on the owner's finalizers where the
# OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift; kueue#1485).
- apiGroups: [parallelsynth.io]
  resources: [synthdatasets/finalizers, renderbatches/finalizers]
  verbs: [update]
# One Indexed Job per RenderBatch.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, create, patch, delete]
# The spec of each Job attempt, mounted read-only by its pods (not copied into their env).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, get]
# Rendering pods: read only (preemptions, pending pods, the node of each pod; the watch sees
# pods evicted and removed between two batch ticks).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# kopf and the operator post Events about datasets and batches.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
