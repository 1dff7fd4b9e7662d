package gateway

import (
	crdinstall "aiconform.dev/testcluster/internal/crds"
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// Schema builders: the CRDs follow the standard-channel v1 schemas of
// GatewayClass, Gateway and HTTPRoute, trimmed to the fields the stand-in
// implements (plus the common status shapes); they stay structural.

type props = map[string]apiextensionsv1.JSONSchemaProps

func str() apiextensionsv1.JSONSchemaProps { return apiextensionsv1.JSONSchemaProps{Type: "string"} }
func i32() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int32"}
}
func i64() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int64"}
}
func enum(def string, values ...string) apiextensionsv1.JSONSchemaProps {
	s := str()
	for _, v := range values {
		s.Enum = append(s.Enum, apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)})
	}
	if def != "" {
		s.Default = &apiextensionsv1.JSON{Raw: []byte(`"` + def + `"`)}
	}
	return s
}
func obj(p props, required ...string) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object", Properties: p, Required: required}
}
func list(item apiextensionsv1.JSONSchemaProps, maxItems int64) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &item}, MaxItems: ptr.To(maxItems)}
}
func preserved() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}
}

// condition is metav1.Condition.
func condition() apiextensionsv1.JSONSchemaProps {
	return obj(props{
		"type": str(), "status": enum("", "True", "False", "Unknown"), "reason": str(), "message": str(),
		"observedGeneration": i64(), "lastTransitionTime": {Type: "string", Format: "date-time"},
	}, "type", "status", "reason", "message", "lastTransitionTime")
}

func conditions() apiextensionsv1.JSONSchemaProps {
	c := list(condition(), 8)
	c.XListType = ptr.To("map")
	c.XListMapKeys = []string{"type"}
	return c
}

func parentRefSchema() apiextensionsv1.JSONSchemaProps {
	g := str()
	g.Default = &apiextensionsv1.JSON{Raw: []byte(`"` + Group + `"`)}
	k := str()
	k.Default = &apiextensionsv1.JSON{Raw: []byte(`"Gateway"`)}
	return obj(props{"group": g, "kind": k, "namespace": str(), "name": str(), "sectionName": str(), "port": i32()}, "name")
}

func backendRefSchema() apiextensionsv1.JSONSchemaProps {
	g := str()
	g.Default = &apiextensionsv1.JSON{Raw: []byte(`""`)}
	k := str()
	k.Default = &apiextensionsv1.JSON{Raw: []byte(`"Service"`)}
	w := i32()
	w.Default = &apiextensionsv1.JSON{Raw: []byte(`1`)}
	w.Minimum = ptr.To(0.0)
	w.Maximum = ptr.To(1000000.0)
	return obj(props{"group": g, "kind": k, "name": str(), "namespace": str(), "port": i32(), "weight": w,
		"filters": list(preserved(), 16)}, "name")
}

func httpRouteMatchSchema() apiextensionsv1.JSONSchemaProps {
	return obj(props{
		"path": obj(props{"type": enum("PathPrefix", "Exact", "PathPrefix", "RegularExpression"), "value": func() apiextensionsv1.JSONSchemaProps {
			v := str()
			v.Default = &apiextensionsv1.JSON{Raw: []byte(`"/"`)}
			return v
		}()}),
		"headers":     list(obj(props{"type": enum("Exact", "Exact", "RegularExpression"), "name": str(), "value": str()}, "name", "value"), 16),
		"queryParams": list(obj(props{"type": enum("Exact", "Exact", "RegularExpression"), "name": str(), "value": str()}, "name", "value"), 16),
		"method":      enum("", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"),
	})
}

func crdFor(kind, plural, singular string, scope apiextensionsv1.ResourceScope, spec, status apiextensionsv1.JSONSchemaProps, shortNames ...string) *apiextensionsv1.CustomResourceDefinition {
	schema := obj(props{
		"apiVersion": str(), "kind": str(), "metadata": {Type: "object"},
		"spec": spec, "status": status,
	}, "spec")
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + Group, Annotations: map[string]string{
			"gateway.networking.k8s.io/bundle-version": BundleVersion,
			"gateway.networking.k8s.io/channel":        "standard",
			// *.k8s.io groups need it; the upstream CRDs name their approval.
			"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/2466",
		}},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: Group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: singular, Kind: kind, ListKind: kind + "List",
				ShortNames: shortNames, Categories: []string{"gateway-api"}},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: Version, Served: true, Storage: true,
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &schema},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			}},
		},
	}
}

// CRDs are GatewayClass, Gateway, HTTPRoute and the Inference Extension's
// InferencePool.
func CRDs() []*apiextensionsv1.CustomResourceDefinition {
	gatewayClass := crdFor("GatewayClass", "gatewayclasses", "gatewayclass", apiextensionsv1.ClusterScoped,
		obj(props{"controllerName": str(), "description": func() apiextensionsv1.JSONSchemaProps {
			d := str()
			d.MaxLength = ptr.To[int64](64) // as upstream's
			return d
		}(), "parametersRef": preserved()}, "controllerName"),
		obj(props{"conditions": conditions(), "supportedFeatures": list(obj(props{"name": str()}, "name"), 64)}),
		"gc")
	listenerSchema := obj(props{
		"name": str(), "hostname": str(), "port": i32(),
		"protocol": str(), "tls": preserved(), "allowedRoutes": preserved(),
	}, "name", "port", "protocol")
	listenerStatus := obj(props{
		"name":           str(),
		"supportedKinds": list(obj(props{"group": str(), "kind": str()}, "kind"), 8),
		"attachedRoutes": i32(),
		"conditions":     conditions(),
	}, "name", "supportedKinds", "attachedRoutes", "conditions")
	address := obj(props{"type": str(), "value": str()}, "value")
	gateway := crdFor("Gateway", "gateways", "gateway", apiextensionsv1.NamespaceScoped,
		obj(props{
			"gatewayClassName": str(),
			"listeners":        list(listenerSchema, 64),
			"addresses":        list(address, 16),
			"infrastructure":   preserved(),
		}, "gatewayClassName", "listeners"),
		obj(props{"addresses": list(address, 16), "conditions": conditions(), "listeners": list(listenerStatus, 64)}),
		"gtw")
	rule := obj(props{
		"name":        str(),
		"matches":     list(httpRouteMatchSchema(), 64),
		"filters":     list(preserved(), 16),
		"backendRefs": list(backendRefSchema(), 16),
		"timeouts":    obj(props{"request": str(), "backendRequest": str()}),
	})
	parentStatus := obj(props{"parentRef": parentRefSchema(), "controllerName": str(), "conditions": conditions()},
		"parentRef", "controllerName")
	httpRoute := crdFor("HTTPRoute", "httproutes", "httproute", apiextensionsv1.NamespaceScoped,
		obj(props{
			"parentRefs": list(parentRefSchema(), 32),
			"hostnames":  list(str(), 16),
			"rules":      list(rule, 16),
		}),
		obj(props{"parents": list(parentStatus, 32)}, "parents"))
	return []*apiextensionsv1.CustomResourceDefinition{gatewayClass, gateway, httpRoute, PoolCRD()}
}

func ensureCRDs(ctx context.Context, cfg *rest.Config) error {
	return crdinstall.Install(ctx, cfg, CRDs()...)
}
