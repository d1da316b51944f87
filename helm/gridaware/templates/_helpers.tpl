{{- define "gridaware.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gridaware.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gridaware.labels" -}}
app.kubernetes.io/name: {{ include "gridaware.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gridaware.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gridaware.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gridaware.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gridaware.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* host:port for a bind address, bracketing IPv6 addresses: (list address port) */ -}}
{{- define "gridaware.hostport" -}}
{{- $address := index . 0 -}}
{{- if contains ":" $address -}}
[{{ $address }}]:{{ index . 1 }}
{{- else -}}
{{ $address }}:{{ index . 1 }}
{{- end -}}
{{- end -}}
