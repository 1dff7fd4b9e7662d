package operator

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func req(t *testing.T, obj map[string]interface{}) *admissionv1.AdmissionRequest {
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &admissionv1.AdmissionRequest{UID: "u1", Object: runtime.RawExtension{Raw: raw}}
}

func TestValidate(t *testing.T) {
	ok := map[string]interface{}{"spec": map[string]interface{}{"model": "llama", "replicas": 2.0}}
	if p := Validate(ok); len(p) != 0 {
		t.Fatalf("valid object rejected: %v", p)
	}
	for _, bad := range []map[string]interface{}{
		{"spec": map[string]interface{}{"model": "", "replicas": 1.0}},
		{"spec": map[string]interface{}{"model": "m", "replicas": 0.0}},
		{"spec": map[string]interface{}{"model": "m", "replicas": 17.0}},
		{"spec": map[string]interface{}{"model": "m"}},
		{},
	} {
		if len(Validate(bad)) == 0 {
			t.Errorf("invalid object admitted: %v", bad)
		}
	}
}

func TestReviewDeniesUnlessAdmitAll(t *testing.T) {
	bad := map[string]interface{}{"spec": map[string]interface{}{"replicas": 0.0}}
	r := review(req(t, bad), false)
	if r.Allowed || r.UID != "u1" || r.Result == nil || r.Result.Message == "" {
		t.Fatalf("bad object: %+v", r)
	}
	if r := review(req(t, bad), true); !r.Allowed {
		t.Fatalf("admit-all fault denied: %+v", r)
	}
}

func TestWebhookConfigurationReferencesService(t *testing.T) {
	c := webhookConfiguration([]byte("ca"), 1234)
	s := c.Webhooks[0].ClientConfig.Service
	if s == nil || s.Name != ServiceName || s.Namespace != Namespace || *s.Port != 1234 {
		t.Fatalf("service reference: %+v", s)
	}
	if c.Webhooks[0].ClientConfig.URL != nil {
		t.Fatal("must be called through a Service reference, not a URL")
	}
}
