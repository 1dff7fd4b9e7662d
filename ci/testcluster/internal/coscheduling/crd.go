package coscheduling

import (
	crdinstall "aiconform.dev/testcluster/internal/crds"
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// PodGroupCRD is the scheduling.x-k8s.io/v1alpha1 PodGroup CRD, structurally
// equivalent to the one shipped by kubernetes-sigs/scheduler-plugins.
func PodGroupCRD() *apiextensionsv1.CustomResourceDefinition {
	i32 := func(desc string) apiextensionsv1.JSONSchemaProps {
		return apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int32", Description: desc}
	}
	quantity := apiextensionsv1.JSONSchemaProps{
		AnyOf:        []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}},
		Pattern:      `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`,
		XIntOrString: true,
	}
	schema := &apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "PodGroup is a collection of Pod; used for batch workload.",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec": {
				Type:        "object",
				Description: "Specification of the desired behavior of the pod group.",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"minMember": func() apiextensionsv1.JSONSchemaProps {
						p := i32("MinMember defines the minimal number of members/tasks to run the pod group.")
						p.Minimum = ptr.To[float64](1)
						return p
					}(),
					"minResources": {
						Type:                 "object",
						Description:          "MinResources defines the minimal resource of members/tasks to run the pod group.",
						AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &quantity},
					},
					"scheduleTimeoutSeconds": i32("ScheduleTimeoutSeconds defines the maximal time of members/tasks to wait before run the pod group."),
				},
			},
			"status": {
				Type:        "object",
				Description: "Status represents the current information about a pod group.",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"failed":            i32("The number of pods which reached phase Failed."),
					"occupiedBy":        {Type: "string", Description: "OccupiedBy marks the workload that the podgroup belongs to."},
					"phase":             {Type: "string", Description: "Current phase of PodGroup."},
					"running":           i32("The number of actively running pods."),
					"scheduleStartTime": {Type: "string", Format: "date-time", Description: "ScheduleStartTime of the group"},
					"scheduled":         i32("The number of scheduled pods (deprecated upstream)."),
					"succeeded":         i32("The number of pods which reached phase Succeeded."),
				},
			},
		},
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{
			Name: "podgroups.scheduling.x-k8s.io",
			Annotations: map[string]string{
				"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/scheduler-plugins/pull/50",
			},
		},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "scheduling.x-k8s.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Kind: "PodGroup", ListKind: "PodGroupList", Plural: "podgroups", Singular: "podgroup",
				ShortNames: []string{"pg", "pgs"},
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1alpha1", Served: true, Storage: true,
				Schema:       &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: schema},
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
					{Name: "Phase", Type: "string", JSONPath: ".status.phase"},
					{Name: "MinMember", Type: "integer", JSONPath: ".spec.minMember"},
					{Name: "Running", Type: "integer", JSONPath: ".status.running"},
					{Name: "Succeeded", Type: "integer", JSONPath: ".status.succeeded"},
					{Name: "Failed", Type: "integer", JSONPath: ".status.failed"},
					{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
				},
			}},
		},
	}
}

// EnsureCRD installs the PodGroup CRD and waits until it is Established.
func EnsureCRD(ctx context.Context, cfg *rest.Config) error {
	return crdinstall.Install(ctx, cfg, PodGroupCRD())
}
