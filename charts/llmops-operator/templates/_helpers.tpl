{{/* Chart name, overridable. */}}
{{- define "llmops-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "llmops-operator.fullname" -}}
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

{{- define "llmops-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmops-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "llmops-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "llmops-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmops
{{- end }}

{{- define "llmops-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llmops-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image; also the image of the weight loader and evaluation Jobs. */}}
{{- define "llmops-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's RBAC rules, read from files/clusterrole.yaml: a copy of manifests/base/clusterrole.yaml
(the single definition), kept in sync by hack/sync-chart-crds.sh.
*/}}
{{- define "llmops-operator.rules" -}}
{{- (.Files.Get "files/clusterrole.yaml" | fromYaml).rules | toYaml }}
{{- end }}

{{/* Resources that are cluster-scoped: their rules need a ClusterRole even in namespaced installs. */}}
{{- define "llmops-operator.clusterScopedResources" -}}
nodes customresourcedefinitions
{{- end }}

{{/* Rules split by scope: "cluster" or "namespaced". Usage: include "llmops-operator.rulesFor" (list . "cluster") */}}
{{- define "llmops-operator.rulesFor" -}}
{{- $root := index . 0 }}
{{- $scope := index . 1 }}
{{- $clusterScoped := splitList " " (include "llmops-operator.clusterScopedResources" $root) }}
{{- $out := list }}
{{- range (include "llmops-operator.rules" $root | fromYamlArray) }}
{{- $isCluster := false }}
{{- range .resources }}{{ if has . $clusterScoped }}{{ $isCluster = true }}{{ end }}{{ end }}
{{- if eq $isCluster (eq $scope "cluster") }}
{{- $out = append $out . }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
