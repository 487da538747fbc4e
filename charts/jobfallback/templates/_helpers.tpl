{{/*
Expand the name of the chart.
*/}}
{{- define "jobfallback.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters (DNS label limit). The hook Jobs append a
suffix of up to 14 characters, so their names are cut again where they are built.
*/}}
{{- define "jobfallback.fullname" -}}
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

{{/*
A child object's name: "<fullname>-<suffix>", still a valid DNS label.
Usage: include "jobfallback.childName" (list . "db-upgrade")
*/}}
{{- define "jobfallback.childName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "jobfallback.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/*
The CronJob's name: at most 52 characters, because the controller appends an 11-character
suffix to name the Jobs it creates.
*/}}
{{- define "jobfallback.cronJobName" -}}
{{- include "jobfallback.fullname" . | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "jobfallback.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "jobfallback.labels" -}}
helm.sh/chart: {{ include "jobfallback.chart" . }}
{{ include "jobfallback.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "jobfallback.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobfallback.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "jobfallback.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobfallback.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "jobfallback.secretName" -}}
{{- default (include "jobfallback.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "jobfallback.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Annotations that make an object the chart renders exist before the pre-install db-upgrade hook
runs (Helm creates ordinary objects only after pre-install hooks). Lower weight: created first.
before-hook-creation: an upgrade replaces it with the new values.
Helm does not delete hook objects on uninstall: NOTES.txt says how to remove them.
*/}}
{{- define "jobfallback.prerequisiteHookAnnotations" -}}
{{- if .Values.hooks.dbUpgrade -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end }}
{{- end }}

{{/*
DATABASE_URL from the Secret: every command needs it.
*/}}
{{- define "jobfallback.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "jobfallback.secretName" . }}
      key: {{ .Values.secretKeys.databaseUrl }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The sweep's settings. The token comes from the Secret only, never as a literal value.
*/}}
{{- define "jobfallback.sweepEnv" -}}
- name: TF_SERVICE_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "jobfallback.secretName" . }}
      key: {{ .Values.secretKeys.serviceToken }}
- name: TFY_HOST
  value: {{ .Values.tfyHost | quote }}
- name: JOB_FALLBACK_ENABLED
  value: {{ .Values.enabled | quote }}
- name: JOB_FALLBACK_STUCK_THRESHOLD_MINUTES
  value: {{ .Values.stuckThresholdMinutes | quote }}
- name: JOB_FALLBACK_CONCURRENCY
  value: {{ .Values.concurrency | quote }}
{{ include "jobfallback.databaseEnv" . }}
{{- end }}

{{/*
One pod spec for the CronJob and the hook Jobs, so the security settings cannot drift apart.
Usage: include "jobfallback.podSpec" (dict "root" . "args" (list "sweep") "sweepEnv" true "configs" false)
*/}}
{{- define "jobfallback.podSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "jobfallback.serviceAccountName" $root }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
# The sweep never talks to the Kubernetes API.
automountServiceAccountToken: false
restartPolicy: Never
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: {{ $root.Chart.Name }}
    image: {{ include "jobfallback.image" $root | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      {{- if .sweepEnv }}
      {{- include "jobfallback.sweepEnv" $root | nindent 6 }}
      {{- else }}
      {{- include "jobfallback.databaseEnv" $root | nindent 6 }}
      {{- end }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml $root.Values.resources | nindent 6 }}
    volumeMounts:
      # The root filesystem is read-only; Python and libpq may still want a scratch directory.
      - name: tmp
        mountPath: /tmp
      {{- if .configs }}
      - name: configs
        mountPath: /config
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if .configs }}
  - name: configs
    configMap:
      name: {{ include "jobfallback.childName" (list $root "configs") }}
  {{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Pod labels and annotations shared by every pod the chart creates. The chart's own annotations
(e.g. the checksum) win over podAnnotations.
Usage: include "jobfallback.podMetadata" (dict "root" . "annotations" (dict "checksum/config" $sum))
*/}}
{{- define "jobfallback.podMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "jobfallback.labels" $root | nindent 2 }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with merge (dict) (.annotations | default dict) $root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Collect every problem with the values, then fail once listing them all.
*/}}
{{- define "jobfallback.validateValues" -}}
{{- $messages := list -}}
{{- if not .Values.tfyHost -}}
{{- $messages = append $messages "tfyHost: set the TrueFoundry control-plane URL, e.g. --set tfyHost=https://acme.truefoundry.cloud" -}}
{{- end -}}
{{- if .Values.existingSecret -}}
{{- if or .Values.secret.serviceToken .Values.secret.databaseUrl -}}
{{- $messages = append $messages "secret.*: ignored when existingSecret is set; remove secret.serviceToken/secret.databaseUrl or existingSecret" -}}
{{- end -}}
{{- else -}}
{{- if not .Values.secret.serviceToken -}}
{{- $messages = append $messages "secret.serviceToken: set the TrueFoundry API token, or name a Secret holding it with existingSecret" -}}
{{- end -}}
{{- if not .Values.secret.databaseUrl -}}
{{- $messages = append $messages "secret.databaseUrl: set a postgresql:// URL (the embedded PostgreSQL is for laptops), or name a Secret holding it with existingSecret" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.configsPrune (not .Values.configs) -}}
{{- $messages = append $messages "configsPrune: needs a non-empty configs list (pruning with an empty list would delete every stored config)" -}}
{{- end -}}
{{- if $messages -}}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail -}}
{{- end -}}
{{- end }}

{{/*
The spec of a hook Job (db upgrade, configs import): the shared pod, its own retry and deadline.
Usage: include "jobfallback.hookJobSpec" (dict "root" . "args" (list "db" "upgrade") "configs" false)
*/}}
{{- define "jobfallback.hookJobSpec" -}}
{{- $root := .root -}}
backoffLimit: {{ $root.Values.hooks.backoffLimit }}
activeDeadlineSeconds: {{ $root.Values.hooks.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ $root.Values.hooks.ttlSecondsAfterFinished }}
template:
  metadata:
    {{- include "jobfallback.podMetadata" (dict "root" $root) | nindent 4 }}
  spec:
    {{- include "jobfallback.podSpec" (dict "root" $root "args" .args "sweepEnv" false "configs" .configs) | nindent 4 }}
{{- end }}
