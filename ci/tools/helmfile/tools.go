//go:build tools

// Package tools pins helmfile for ci/tools/build.sh. A module of its own: helmfile's go.mod
// replaces k8s.io/{api,apimachinery,client-go}, which must be repeated in the main module
// and would move the Kubernetes libraries Helm is built with.
package tools

import _ "github.com/helmfile/helmfile"
