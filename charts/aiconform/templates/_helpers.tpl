{{- define "aiconform.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aiconform.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "aiconform.image" -}}
{{- printf "%s:%s" .Values.image.repository (default (printf "v%s" .Chart.AppVersion) .Values.image.tag) -}}
{{- end -}}

{{- define "aiconform.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aiconform.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Names of the result ConfigMaps this release writes. */}}
{{- define "aiconform.resultNames" -}}
{{- if .Values.fleet.members -}}
{{- range .Values.fleet.members }}
- {{ printf "%s-%s" $.Values.results.configMap .name | quote }}
{{- end -}}
{{- else }}
- {{ .Values.results.configMap | quote }}
{{- end -}}
{{- end -}}

{{/*
The run's Job template. Context: dict "root" $ "member" (nil or a fleet member).
*/}}
{{- define "aiconform.jobTemplate" -}}
{{- $root := .root -}}
{{- $m := .member -}}
{{- $v := $root.Values -}}
metadata:
  labels:
    {{- include "aiconform.labels" $root | nindent 4 }}
    {{- if $m }}
    aiconform.dev/member: {{ $m.name | quote }}
    {{- end }}
spec:
  backoffLimit: {{ $v.job.backoffLimit }}
  activeDeadlineSeconds: {{ $v.job.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: {{ $v.job.ttlSecondsAfterFinished }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ $root.Chart.Name }}
        app.kubernetes.io/instance: {{ $root.Release.Name }}
        app.kubernetes.io/component: run
        {{- if $m }}
        aiconform.dev/member: {{ $m.name | quote }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "aiconform.serviceAccount" $root }}
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: aiconform
          image: {{ include "aiconform.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - run
            {{- if $m }}
            - --kubeconfig
            - /etc/aiconform/member/kubeconfig
            - --report-in-cluster
            {{- else }}
            - --target
            - kubeconfig
            {{- end }}
            {{- if $v.recipe }}
            - --recipe
            - /etc/aiconform/recipe/recipe.yaml
            {{- else }}
            {{- range $k, $val := $v.criteria }}
            - --{{ $k }}
            - {{ $val | quote }}
            {{- end }}
            {{- end }}
            {{- range $v.phases }}
            - --phase
            - {{ . | quote }}
            {{- end }}
            {{- with $v.checklist }}
            - --ai-conformance
            - {{ . | quote }}
            {{- end }}
            - --report-dir
            - /reports
            - --report-configmap
            {{- if $m }}
            - {{ printf "%s/%s-%s" $root.Release.Namespace $v.results.configMap $m.name | quote }}
            - --report-member
            - {{ $m.name | quote }}
            {{- else }}
            - {{ printf "%s/%s" $root.Release.Namespace $v.results.configMap | quote }}
            - --report-member
            - {{ $v.results.member | quote }}
            {{- end }}
            {{- with $v.results.oci }}
            {{- if .reference }}
            - --report-oci
            - {{ if $m }}{{ printf "%s-%s" .reference $m.name | quote }}{{ else }}{{ .reference | quote }}{{ end }}
            {{- if .plainHttp }}
            - --report-oci-plain-http
            {{- end }}
            {{- end }}
            {{- end }}
            {{- range $v.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          {{- if and $v.results.oci.reference $v.results.oci.credentialsSecret }}
          env:
            - name: AICONFORM_REGISTRY_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ $v.results.oci.credentialsSecret | quote }}
                  key: username
            - name: AICONFORM_REGISTRY_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $v.results.oci.credentialsSecret | quote }}
                  key: password
          {{- end }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          volumeMounts:
            - name: reports
              mountPath: /reports
            {{- if $v.recipe }}
            - name: recipe
              mountPath: /etc/aiconform/recipe
              readOnly: true
            {{- end }}
            {{- if $m }}
            - name: member-kubeconfig
              mountPath: /etc/aiconform/member
              readOnly: true
            {{- end }}
      volumes:
        - name: reports
          emptyDir: {}
        {{- if $v.recipe }}
        - name: recipe
          configMap:
            name: {{ include "aiconform.fullname" $root }}-recipe
        {{- end }}
        {{- if $m }}
        - name: member-kubeconfig
          secret:
            secretName: {{ $m.kubeconfigSecret | quote }}
            items:
              - key: {{ default "kubeconfig" $m.kubeconfigKey | quote }}
                path: kubeconfig
        {{- end }}
{{- end -}}
