{{/* NOTES.txt, as a named template so tests can render it without a cluster. */}}
{{- define "registry.notes" -}}
{{- $url := trimSuffix "/" .Values.publicUrl -}}
{{- $dav := printf "%s%s" (ternary "webdavs://" "webdav://" (hasPrefix "https://" $url)) (trimPrefix "https://" (trimPrefix "http://" $url)) -}}
GitLab Data Registry {{ .Chart.AppVersion }} is installed as "{{ .Release.Name }}" at {{ $url }}.

1. Check it:  curl {{ $url }}/-/ready

2. A token: a GitLab personal, project or group access token with scope read_api (pull) or api (push),
   from GitLab > User settings (or the project's Settings) > Access tokens. In CI, the job's own
   CI_JOB_TOKEN works on its project as is.

3. DVC remote for a GitLab project (here group/project; any prefix after /-/data works), http:

     dvc remote add -d registry {{ $url }}/group/project/-/data/dvc
     dvc remote modify registry auth custom
     dvc remote modify registry custom_auth_header Authorization
     dvc remote modify --local registry password "Bearer $GITLAB_TOKEN"
     dvc push

   or webdav (run-cache, dvc gc -c, fast status):

     dvc remote add -d registry {{ $dav }}/group/project/-/data/dvc
     dvc remote modify --local registry token "$GITLAB_TOKEN"
     dvc push

4. Register GitLab's hook so data follows deleted, renamed and moved projects:
{{- if .Values.webhook.existingSecret }}
     URL:           {{ $url }}/-/hooks/gitlab
     Secret token:  the value of key "{{ .Values.webhook.tokenKey }}" in Secret "{{ .Values.webhook.existingSecret }}"
     Self-managed:  Admin > System hooks > Add new webhook, with "Repository update events" off
     gitlab.com:    each top-level group > Settings > Webhooks, with "Project events"
{{- else }}
     Hooks are OFF: create a Secret with a random token and set webhook.existingSecret, then register
     {{ $url }}/-/hooks/gitlab with that token as a system hook (self-managed: Admin > System hooks)
     or a group webhook with "Project events" (gitlab.com: each top-level group > Settings > Webhooks).
{{- end }}

5. Sign-in with GitLab for the browser UI ({{ $url }}/):
{{- if .Values.oauth.clientId }}
     on ({{ .Values.oauth.scopes }}); the GitLab application's redirect URI must be {{ $url }}/-/auth/callback
{{- else }}
     OFF. In GitLab, Admin > Applications: add an application with redirect URI
     {{ $url }}/-/auth/callback, Confidential, scope read_api; then set oauth.clientId and a Secret
     with its secret in oauth.existingSecret.
{{- end }}
{{- if not .Values.gitlab.serviceToken.existingSecret }}

   Without gitlab.serviceToken the reconciler, deploy tokens and CI tokens on other projects are off.
{{- end }}
{{- end -}}
