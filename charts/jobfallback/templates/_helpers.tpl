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
Common labels plus the component, which tells the sweep's Jobs and pods from the configs import
and the helm test (`kubectl get jobs -l app.kubernetes.io/component=sweep`).
Usage: include "jobfallback.componentLabels" (dict "root" . "component" "sweep")
*/}}
{{- define "jobfallback.componentLabels" -}}
{{ include "jobfallback.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "jobfallback.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobfallback.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
An object's `annotations:` block: commonAnnotations plus the object's own (which win); nothing
when both are empty.
Usage: include "jobfallback.annotations" (dict "root" . "annotations" (dict "helm.sh/hook" "test"))
*/}}
{{- define "jobfallback.annotations" -}}
{{- with merge (dict) (.annotations | default dict) .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "jobfallback.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobfallback.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding the token (and the database URL unless database.existingSecret is set).
*/}}
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
DATABASE_URL from its Secret (database.existingSecret, else the token's), then extraEnv: every
command needs both.
*/}}
{{- define "jobfallback.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.database.existingSecret }}
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.existingSecretKey }}
      {{- else }}
      name: {{ include "jobfallback.secretName" . }}
      key: {{ .Values.secretKeys.databaseUrl }}
      {{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The sweep's settings (also doctor's, in the helm test). The token comes from the Secret only,
never as a literal value.
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
{{- $deadline := .Values.passDeadlineSeconds }}
{{- if and (kindIs "invalid" $deadline) (not (kindIs "invalid" .Values.activeDeadlineSeconds)) }}
{{- /* The pod's deadline also covers the migration and the push/webhook after the pass. */}}
{{- $deadline = max 1 (sub .Values.activeDeadlineSeconds 60) }}
{{- end }}
{{- if not (kindIs "invalid" $deadline) }}
- name: JOB_FALLBACK_PASS_DEADLINE_SECONDS
  value: {{ $deadline | quote }}
{{- end }}
{{- with .Values.metrics.pushgateway.url }}
- name: JOB_FALLBACK_PUSHGATEWAY_URL
  value: {{ . | quote }}
- name: JOB_FALLBACK_PUSHGATEWAY_TIMEOUT_SECONDS
  value: {{ $.Values.metrics.pushgateway.timeoutSeconds | quote }}
{{- end }}
- name: JOB_FALLBACK_METRICS_INSTANCE
  value: {{ include "jobfallback.metricsInstance" . | quote }}
{{- /* The guard rails: a null value leaves the sweep's default. Whole numbers are printed as
       such (a large YAML number would otherwise print as 1e+06, which is no integer). */}}
{{- $wholes := dict
  "JOB_FALLBACK_MAX_MOVES" .Values.maxMoves
  "JOB_FALLBACK_MAX_MOVES_PER_DESTINATION" .Values.maxMovesPerDestination
  "JOB_FALLBACK_MAX_MOVES_PER_SOURCE" .Values.maxMovesPerSource
  "JOB_FALLBACK_COOLDOWN_MINUTES" .Values.cooldownMinutes
  "JOB_FALLBACK_MAX_HOPS" .Values.maxHops
  "JOB_FALLBACK_BREAKER_MIN_MOVES" .Values.breaker.minMoves
  "JOB_FALLBACK_BREAKER_FAILED_PASSES" .Values.breaker.failedPasses
  "JOB_FALLBACK_BREAKER_QUIET_MINUTES" .Values.breaker.quietMinutes }}
{{- range $name, $value := $wholes }}
{{- if not (kindIs "invalid" $value) }}
- name: {{ $name }}
  value: {{ $value | int64 | toString | quote }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" .Values.breaker.failureRatio) }}
- name: JOB_FALLBACK_BREAKER_FAILURE_RATIO
  value: {{ .Values.breaker.failureRatio | toString | quote }}
{{- end }}
{{- /* Optional: a Secret without the key (one made for an older chart) leaves the variable
       unset, which is no webhook, and the pod still starts. */}}
- name: JOB_FALLBACK_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "jobfallback.secretName" . }}
      key: {{ .Values.secretKeys.webhookUrl }}
      optional: true
- name: JOB_FALLBACK_WEBHOOK_FORMAT
  value: {{ .Values.notifications.webhook.format | quote }}
- name: JOB_FALLBACK_WEBHOOK_TIMEOUT_SECONDS
  value: {{ .Values.notifications.webhook.timeoutSeconds | quote }}
{{ include "jobfallback.databaseEnv" . }}
{{- end }}

{{/*
The `instance` of the metrics and the webhook messages: metrics.instance, else
"<namespace>/<release>" (unique per install, stable across runs; prometheus_client encodes the
"/" in the Pushgateway's grouping-key path). The PrometheusRule selects it.
*/}}
{{- define "jobfallback.metricsInstance" -}}
{{- default (printf "%s/%s" .Release.Namespace .Release.Name) .Values.metrics.instance }}
{{- end }}

{{/*
The Pushgateway's port for the NetworkPolicy: the one in metrics.pushgateway.url, else its
scheme's default (a bare host:port is http, as the sweep reads it).
*/}}
{{- define "jobfallback.pushgatewayPort" -}}
{{- $url := .Values.metrics.pushgateway.url }}
{{- if not (contains "://" $url) }}
{{- $url = printf "http://%s" $url }}
{{- end }}
{{- $parsed := urlParse $url }}
{{- $port := regexFind ":[0-9]+$" $parsed.host | trimPrefix ":" }}
{{- if $port }}
{{- $port }}
{{- else if eq $parsed.scheme "https" }}
{{- 443 }}
{{- else }}
{{- 80 }}
{{- end }}
{{- end }}

{{/*
Seconds without a successful pass before JobfallbackNoSuccessfulSweep fires: the value, else 3
schedule intervals of an every-N-minutes ("star slash N") or hourly ("M * * * *") schedule; ""
for any other schedule
(validateValues then asks for the value).
*/}}
{{- define "jobfallback.noSuccessForSeconds" -}}
{{- $rule := .Values.metrics.prometheusRule }}
{{- $schedule := .Values.schedule | trim }}
{{- if not (kindIs "invalid" $rule.noSuccessForSeconds) }}
{{- $rule.noSuccessForSeconds | int }}
{{- else if regexMatch "^\\*/[0-9]+ \\* \\* \\* \\*$" $schedule }}
{{- mul 180 (regexFind "[0-9]+" $schedule | int) }}
{{- else if regexMatch "^[0-9]+ \\* \\* \\* \\*$" $schedule }}
{{- 10800 }}
{{- end }}
{{- end }}

{{/*
One container: the image, the hardened security context, the scratch /tmp and the user's mounts.
Usage: include "jobfallback.container" (dict "root" . "name" "db-upgrade" "args" (list "db" "upgrade") "sweepEnv" false "configs" false)
*/}}
{{- define "jobfallback.container" -}}
{{- $root := .root -}}
- name: {{ .name }}
  image: {{ include "jobfallback.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    {{- toYaml .args | nindent 4 }}
  env:
    {{- if .sweepEnv }}
    {{- include "jobfallback.sweepEnv" $root | nindent 4 }}
    {{- else }}
    {{- include "jobfallback.databaseEnv" $root | nindent 4 }}
    {{- end }}
    {{- with .env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml $root.Values.resources | nindent 4 }}
  volumeMounts:
    # The root filesystem is read-only; Python and libpq may still want a scratch directory.
    - name: tmp
      mountPath: /tmp
    {{- if .configs }}
    - name: configs
      mountPath: /config
      readOnly: true
    {{- end }}
    {{- with $root.Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
One pod spec for the CronJob, the configs import Job and the helm test, so the security settings
cannot drift apart. With database.upgrade, `jobfallback db upgrade` runs first as an init
container: migrations need no hook and no object that exists before the release's own, and a
pod never starts its command on a schema older than its image (it is a locked no-op when the
schema is current, and code runs on a schema one release newer, so a rollback keeps working).
Usage: include "jobfallback.podSpec" (dict "root" . "args" (list "sweep") "sweepEnv" true "configs" false)
"env" (optional): more variables for the main container only, e.g. the sweep's shard count.
*/}}
{{- define "jobfallback.podSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "jobfallback.serviceAccountName" $root }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
# The sweep never talks to the Kubernetes API, nor to the namespace's Services.
automountServiceAccountToken: false
enableServiceLinks: false
restartPolicy: Never
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- if $root.Values.database.upgrade }}
initContainers:
  {{- include "jobfallback.container" (dict "root" $root "name" "db-upgrade" "args" (list "db" "upgrade") "sweepEnv" false "configs" false) | nindent 2 }}
{{- end }}
containers:
  {{- include "jobfallback.container" (dict "root" $root "name" $root.Chart.Name "args" .args "sweepEnv" .sweepEnv "env" .env "configs" .configs) | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if .configs }}
  - name: configs
    configMap:
      name: {{ include "jobfallback.childName" (list $root "configs") }}
  {{- end }}
  {{- with $root.Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
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
{{- with $root.Values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Pod labels and annotations shared by every pod the chart creates. The chart's own annotations
(e.g. the checksum) win over podAnnotations.
Usage: include "jobfallback.podMetadata" (dict "root" . "component" "sweep" "annotations" (dict "checksum/config" $sum))
*/}}
{{- define "jobfallback.podMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "jobfallback.componentLabels" (dict "root" $root "component" .component) | nindent 2 }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with merge (dict) (.annotations | default dict) $root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
A Job's metadata labels and annotations (each sweep's Job, the configs import Job): the
component, jobLabels, and jobAnnotations plus commonAnnotations under the Job's own.
Usage: include "jobfallback.jobMetadata" (dict "root" . "component" "sweep" "annotations" dict)
*/}}
{{- define "jobfallback.jobMetadata" -}}
{{- $root := .root -}}
labels:
  {{- include "jobfallback.componentLabels" (dict "root" $root "component" .component) | nindent 2 }}
  {{- with $root.Values.jobLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- include "jobfallback.annotations" (dict "root" $root "annotations" (merge (dict) (.annotations | default dict) $root.Values.jobAnnotations)) }}
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
{{- if .Values.secret.serviceToken -}}
{{- $messages = append $messages "secret.serviceToken: ignored when existingSecret is set; remove one of them" -}}
{{- end -}}
{{- else if not .Values.secret.serviceToken -}}
{{- $messages = append $messages "secret.serviceToken: set the TrueFoundry API token, or name a Secret holding it with existingSecret" -}}
{{- end -}}
{{- if or .Values.existingSecret .Values.database.existingSecret -}}
{{- if .Values.secret.databaseUrl -}}
{{- $messages = append $messages "secret.databaseUrl: ignored when existingSecret or database.existingSecret is set; remove one of them" -}}
{{- end -}}
{{- else if not .Values.secret.databaseUrl -}}
{{- $messages = append $messages "secret.databaseUrl: set a postgresql:// URL (the embedded PostgreSQL is for laptops), or name a Secret holding it with database.existingSecret or existingSecret" -}}
{{- end -}}
{{- if and .Values.existingSecret .Values.secret.webhookUrl -}}
{{- $messages = append $messages "secret.webhookUrl: ignored when existingSecret is set; put the URL in that Secret under secretKeys.webhookUrl instead" -}}
{{- end -}}
{{- if .Values.metrics.prometheusRule.enabled -}}
{{- if not .Values.metrics.pushgateway.url -}}
{{- $messages = append $messages "metrics.prometheusRule.enabled: needs metrics.pushgateway.url (the alerts read the series the sweeps push there)" -}}
{{- end -}}
{{- if not (include "jobfallback.noSuccessForSeconds" .) -}}
{{- $messages = append $messages (printf "metrics.prometheusRule.noSuccessForSeconds: set it to 3 schedule intervals in seconds (it is derived only from a \"*/N * * * *\" or an hourly \"M * * * *\" schedule, not from %q)" .Values.schedule) -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int .Values.shards) 1) (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- $messages = append $messages (printf "shards: above 1 needs Kubernetes 1.29 or later (backoffLimitPerIndex keeps one failed shard from stopping the others); this cluster is %s" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and .Values.configsPrune (not .Values.configs) -}}
{{- $messages = append $messages "configsPrune: needs a non-empty configs list (pruning with an empty list would delete every stored config)" -}}
{{- end -}}
{{- if $messages -}}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $messages) | fail -}}
{{- end -}}
{{- end }}
