{{- define "registry.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "registry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "registry.labels" -}}
app.kubernetes.io/name: {{ include "registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "registry.selector" -}}
app.kubernetes.io/name: {{ include "registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "registry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "registry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "registry.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Settings the chart cannot render sensibly: stop with every problem at once, each naming the value. */}}
{{- define "registry.validate" -}}
{{- $v := .Values -}}
{{- $problems := list -}}
{{- $local := eq $v.storage.kind "local" -}}
{{- if not $v.publicUrl -}}
{{- $problems = append $problems "publicUrl is required: the address DVC and browsers use, e.g. --set publicUrl=https://data.example.com" -}}
{{- end -}}
{{- if and (eq $v.database.kind "sqlite") (not $local) -}}
{{- $problems = append $problems (printf "database.kind=sqlite needs storage.kind=local (one replica); with storage.kind=%s set database.kind=postgresql" $v.storage.kind) -}}
{{- end -}}
{{- if and (eq $v.database.kind "postgresql") (not $v.database.postgresql.existingSecret) -}}
{{- $problems = append $problems "database.postgresql.existingSecret is required (a Secret holding the PostgreSQL URL)" -}}
{{- end -}}
{{- if and $local (or (gt (int $v.web.replicas) 1) $v.web.autoscaling.enabled) -}}
{{- $problems = append $problems "storage.kind=local runs one replica: set web.replicas=1 and web.autoscaling.enabled=false" -}}
{{- end -}}
{{- if and (eq $v.storage.kind "gcs") (not $v.storage.gcs.bucket) -}}
{{- $problems = append $problems "storage.gcs.bucket is required" -}}
{{- end -}}
{{- if and (eq $v.storage.kind "s3") (not $v.storage.s3.bucket) -}}
{{- $problems = append $problems "storage.s3.bucket is required" -}}
{{- end -}}
{{- if and $v.oauth.clientId (not $v.oauth.existingSecret) -}}
{{- $problems = append $problems "oauth.existingSecret is required with oauth.clientId (a Secret holding the OAuth application's secret)" -}}
{{- end -}}
{{- if and $v.ingress.enabled $v.ingress.host $v.publicUrl (ne $v.ingress.host (include "registry.publicHost" .)) -}}
{{- $problems = append $problems (printf "ingress.host=%s differs from the host of publicUrl (%s): leave ingress.host empty to use it" $v.ingress.host (include "registry.publicHost" .)) -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n%d value(s) to fix:\n- %s" (len $problems) (join "\n- " $problems)) -}}
{{- end -}}
{{- end -}}

{{/* The host name of publicUrl (no port). */}}
{{- define "registry.publicHost" -}}
{{- regexReplaceAll ":[0-9]+$" (urlParse .Values.publicUrl).host "" -}}
{{- end -}}

{{- define "registry.storageUrl" -}}
{{- if eq .Values.storage.kind "gcs" -}}
{{- printf "gs://%s/%s" .Values.storage.gcs.bucket .Values.storage.gcs.prefix -}}
{{- else if eq .Values.storage.kind "s3" -}}
{{- printf "s3://%s/%s" .Values.storage.s3.bucket .Values.storage.s3.prefix -}}
{{- else -}}
file:///var/lib/data-registry
{{- end -}}
{{- end -}}

{{/* The Secrets the web and worker containers read, by reference. */}}
{{- define "registry.envItems" -}}
{{- with .Values.gitlab.serviceToken }}
{{- if .existingSecret }}
- name: REGISTRY_GITLAB_SERVICE_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .key }}}
{{- end }}
{{- end }}
{{- with .Values.gitlab.statusToken }}
{{- if .existingSecret }}
- name: REGISTRY_GITLAB_STATUS_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .key }}}
{{- end }}
{{- end }}
{{- if eq .Values.database.kind "postgresql" }}
- name: REGISTRY_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.postgresql.existingSecret }}, key: {{ .Values.database.postgresql.key }}}
{{- end }}
{{- if .Values.redis.existingSecret }}
- name: REGISTRY_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.redis.existingSecret }}, key: {{ .Values.redis.key }}}
{{- end }}
{{- if and .Values.oauth.clientId .Values.oauth.existingSecret }}
- name: REGISTRY_OAUTH_CLIENT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .Values.oauth.existingSecret }}, key: {{ .Values.oauth.secretKey }}}
{{- end }}
{{- with .Values.secretKey }}
{{- if .existingSecret }}
- name: REGISTRY_SECRET_KEY
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .key }}}
{{- end }}
{{- end }}
{{- with .Values.webhook }}
{{- if .existingSecret }}
- name: REGISTRY_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .tokenKey }}}
{{- if .signingTokenKey }}
- name: REGISTRY_WEBHOOK_SIGNING_SECRET
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .signingTokenKey }}}
{{- end }}
{{- end }}
{{- end }}
{{- if and (eq .Values.storage.kind "s3") .Values.storage.s3.credentials.existingSecret }}
{{- with .Values.storage.s3.credentials }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .accessKeyIdKey }}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ .existingSecret }}, key: {{ .secretAccessKeyKey }}}
{{- end }}
{{- end }}
{{- if and (eq .Values.storage.kind "gcs") .Values.storage.gcs.credentials.existingSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: /var/run/secrets/gcs/{{ .Values.storage.gcs.credentials.key }}
{{- end }}
{{- end -}}

{{/* Environment of the web and worker containers: the ConfigMap, then the Secrets above. */}}
{{- define "registry.env" -}}
{{- $items := include "registry.envItems" . | trim -}}
envFrom:
  - configMapRef:
      name: {{ include "registry.fullname" . }}
{{- if $items }}
env:
{{ $items | indent 2 }}
{{- end }}
{{- end -}}

{{/* Environment of the migration hook, which runs before any object of the chart exists: the settings
   inline (no ConfigMap yet; they are validated, so a wrong value stops the upgrade before it rolls
   out) and the one Secret `db upgrade` reads, the database URL. */}}
{{- define "registry.migrationEnv" -}}
{{- range $name, $value := (include "registry.config" . | fromYaml) }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- if eq .Values.database.kind "postgresql" }}
- name: REGISTRY_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.database.postgresql.existingSecret }}, key: {{ .Values.database.postgresql.key }}}
{{- end }}
{{- end -}}

{{/* The migration hook's ServiceAccount: one that exists before the install. The chart's own is created
   only after the pre-install hooks (Kubernetes refuses a pod naming a ServiceAccount that does not
   exist), so unless migrations.serviceAccountName names one, the hook uses the namespace's default
   (or the existing account the release is told to use with serviceAccount.create=false). */}}
{{- define "registry.migrationServiceAccountName" -}}
{{- if .Values.migrations.serviceAccountName -}}
{{- .Values.migrations.serviceAccountName -}}
{{- else if .Values.serviceAccount.create -}}
default
{{- else -}}
{{- include "registry.serviceAccountName" . -}}
{{- end -}}
{{- end -}}

{{- define "registry.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if eq .Values.storage.kind "local" }}
- name: data
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-data" (include "registry.fullname" .)) .Values.storage.local.persistence.existingClaim }}
{{- end }}
{{- if and (eq .Values.storage.kind "gcs") .Values.storage.gcs.credentials.existingSecret }}
- name: gcs-key
  secret:
    secretName: {{ .Values.storage.gcs.credentials.existingSecret }}
{{- end }}
{{- end -}}

{{- define "registry.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.storage.kind "local" }}
- name: data
  mountPath: /var/lib/data-registry
{{- end }}
{{- if and (eq .Values.storage.kind "gcs") .Values.storage.gcs.credentials.existingSecret }}
- name: gcs-key
  mountPath: /var/run/secrets/gcs
  readOnly: true
{{- end }}
{{- end -}}

{{- define "registry.workerContainer" -}}
- name: worker
  image: {{ include "registry.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["worker"]
  ports:
    - name: worker-metrics  # /metrics of the worker's job runs (REGISTRY_WORKER_METRICS_PORT)
      containerPort: 9102
      protocol: TCP
  {{- include "registry.env" . | nindent 2 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.worker.resources | nindent 4 }}
  volumeMounts:
    {{- include "registry.volumeMounts" . | nindent 4 }}
{{- end -}}
