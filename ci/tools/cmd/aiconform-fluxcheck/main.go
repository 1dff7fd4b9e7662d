// Command aiconform-fluxcheck decodes every YAML document of the given files strictly into
// the Flux API Go types (HelmRelease v2, HelmRepository/OCIRepository/GitRepository v1,
// Kustomization v1): an unknown kind, an unknown field or a mistyped value is an error.
// The types come from the controllers' api modules, the source their CRD schemas are
// generated from (the helm-controller module itself is not served by the Go proxy).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	bad := 0
	n := 0
	for _, f := range os.Args[1:] {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			doc = strings.TrimPrefix(doc, "---\n")
			if strings.TrimSpace(doc) == "" {
				continue
			}
			j, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				fmt.Println(f, err)
				bad++
				continue
			}
			var meta struct{ APIVersion, Kind string }
			_ = json.Unmarshal(j, &meta)
			var obj any
			switch meta.APIVersion + "/" + meta.Kind {
			case "helm.toolkit.fluxcd.io/v2/HelmRelease":
				obj = &helmv2.HelmRelease{}
			case "source.toolkit.fluxcd.io/v1/HelmRepository":
				obj = &sourcev1.HelmRepository{}
			case "source.toolkit.fluxcd.io/v1/OCIRepository":
				obj = &sourcev1.OCIRepository{}
			case "source.toolkit.fluxcd.io/v1/GitRepository":
				obj = &sourcev1.GitRepository{}
			case "kustomize.toolkit.fluxcd.io/v1/Kustomization":
				obj = &kustomizev1.Kustomization{}
			default:
				fmt.Println(f, "unexpected", meta.APIVersion, meta.Kind)
				bad++
				continue
			}
			d := json.NewDecoder(bytes.NewReader(j))
			d.DisallowUnknownFields()
			if err := d.Decode(obj); err != nil {
				fmt.Println(f, meta.Kind, err)
				bad++
			}
			n++
		}
	}
	fmt.Printf("%d objects, %d bad\n", n, bad)
	if bad > 0 {
		os.Exit(1)
	}
}
