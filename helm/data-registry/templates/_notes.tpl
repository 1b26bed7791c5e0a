{{/* NOTES.txt, as a named template so tests can render it without a cluster. */}}
{{- define "registry.notes" -}}
GitLab Data Registry {{ .Chart.AppVersion }} is installed as "{{ .Release.Name }}" at {{ .Values.publicUrl }}.

1. DVC remote for a GitLab project (here group/project; any prefix after /-/data works):

     dvc remote add -d registry {{ .Values.publicUrl }}/group/project/-/data/dvc
     dvc remote modify registry auth custom
     dvc remote modify registry custom_auth_header Authorization
     dvc remote modify --local registry password "Bearer $GITLAB_TOKEN"

   WebDAV (run-cache, dvc gc -c):  dvc remote add registry-dav webdavs://{{ trimPrefix "https://" (trimPrefix "http://" .Values.publicUrl) }}/group/project/-/data/dvc

2. Register GitLab's hook so data follows deleted projects:
{{- if .Values.webhook.existingSecret }}
     URL:           {{ .Values.publicUrl }}/-/hooks/gitlab
     Secret token:  the value of key "{{ .Values.webhook.tokenKey }}" in Secret "{{ .Values.webhook.existingSecret }}"
     Self-managed:  Admin > System hooks > Add new webhook
     gitlab.com:    each top-level group > Settings > Webhooks, with "Project events"
{{- else }}
     Hooks are OFF: create a Secret with a token and set webhook.existingSecret, then register
     {{ .Values.publicUrl }}/-/hooks/gitlab as a system hook (self-managed) or group webhook (gitlab.com).
{{- end }}
{{- if not .Values.gitlab.serviceToken.existingSecret }}

   Without gitlab.serviceToken the reconciler, deploy tokens and CI tokens on other projects are off.
{{- end }}

3. Check:  curl {{ .Values.publicUrl }}/-/ready
{{- end -}}
