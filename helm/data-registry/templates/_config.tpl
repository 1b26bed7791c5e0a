{{/* The non-secret settings, as one map: the ConfigMap holds them; the migration hook (which runs
   before the ConfigMap exists) gets them inline (registry.migrationEnv). */}}
{{- define "registry.config" -}}
REGISTRY_GITLAB_URL: {{ .Values.gitlab.url | quote }}
REGISTRY_PUBLIC_URL: {{ .Values.publicUrl | quote }}
REGISTRY_STORAGE_URL: {{ include "registry.storageUrl" . | quote }}
{{- if eq .Values.storage.kind "s3" }}
{{- with .Values.storage.s3 }}
{{- if .endpointUrl }}
REGISTRY_S3_ENDPOINT_URL: {{ .endpointUrl | quote }}
{{- end }}
{{- if .publicEndpointUrl }}
REGISTRY_S3_PUBLIC_ENDPOINT_URL: {{ .publicEndpointUrl | quote }}
{{- end }}
REGISTRY_S3_REGION: {{ .region | quote }}
{{- if .addressingStyle }}
REGISTRY_S3_ADDRESSING_STYLE: {{ .addressingStyle | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq .Values.database.kind "sqlite" }}
REGISTRY_DATABASE_URL: "sqlite:////var/lib/data-registry/registry.db"
{{- end }}
{{- if .Values.oauth.clientId }}
REGISTRY_OAUTH_CLIENT_ID: {{ .Values.oauth.clientId | quote }}
REGISTRY_OAUTH_SCOPES: {{ .Values.oauth.scopes | quote }}
{{- end }}
{{- with .Values.registry }}
REGISTRY_SIGNED_URL_TTL: {{ .signedUrlTtl | quote }}
REGISTRY_UPLOAD_SESSION_TTL: {{ .uploadSessionTtl | quote }}
REGISTRY_TRASH_RETENTION: {{ .trashRetention | quote }}
REGISTRY_DOWNLOAD_MODE: {{ .downloadMode | quote }}
REGISTRY_DOWNLOAD_STREAM_BELOW: {{ .downloadStreamBelow | quote }}
REGISTRY_DEFAULT_QUOTA: {{ .defaultQuota | quote }}
REGISTRY_MAX_FILE_SIZE: {{ .maxFileSize | quote }}
REGISTRY_RATE_LIMIT: {{ .rateLimit | quote }}
REGISTRY_RATE_LIMIT_BURST: {{ .rateLimitBurst | quote }}
{{- if .trustedProxies }}
REGISTRY_TRUSTED_PROXIES: {{ .trustedProxies | quote }}
{{- end }}
REGISTRY_ANONYMOUS_READS: {{ .anonymousReads | quote }}
REGISTRY_RECONCILE_GRACE: {{ .reconcileGrace | quote }}
REGISTRY_LOG_LEVEL: {{ .logLevel | quote }}
REGISTRY_LOG_FORMAT: {{ .logFormat | quote }}
{{- if .adminUsers }}
REGISTRY_ADMIN_USERS: {{ .adminUsers | quote }}
{{- end }}
{{- range $name, $value := .extraEnv }}
{{ $name }}: {{ $value | quote }}
{{- end }}
{{- end }}
{{- end -}}
