package operator

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const webhookPath = "/validate-modelserver"

type webhookServer struct {
	port     int32
	caBundle []byte
}

// Validate returns why a ModelServer is invalid (empty when valid): it needs
// a model name and 1..16 replicas.
func Validate(obj map[string]interface{}) []string {
	var problems []string
	spec, _ := obj["spec"].(map[string]interface{})
	if model, _ := spec["model"].(string); model == "" {
		problems = append(problems, "spec.model must name a model")
	}
	switch r := spec["replicas"].(type) {
	case float64:
		if r < 1 || r > 16 || r != float64(int64(r)) {
			problems = append(problems, fmt.Sprintf("spec.replicas must be an integer from 1 to 16, not %v", r))
		}
	default:
		problems = append(problems, "spec.replicas is required")
	}
	return problems
}

// review answers an AdmissionReview request.
func review(req *admissionv1.AdmissionRequest, admitAll bool) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if admitAll {
		return resp
	}
	var obj map[string]interface{}
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: 400, Message: "cannot decode the object: " + err.Error()}
		return resp
	}
	if problems := Validate(obj); len(problems) > 0 {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: 422, Reason: metav1.StatusReasonInvalid, Message: fmt.Sprintf("invalid ModelServer: %v", problems)}
	}
	return resp
}

func handle(admitAll bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ar admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &ar); err != nil || ar.Request == nil {
			http.Error(w, "expected an admission.k8s.io/v1 AdmissionReview", http.StatusBadRequest)
			return
		}
		out := admissionv1.AdmissionReview{TypeMeta: ar.TypeMeta, Response: review(ar.Request, admitAll)}
		klog.V(2).InfoS("modelserver webhook", "name", ar.Request.Name, "allowed", out.Response.Allowed)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// startWebhookServer serves the webhook over TLS on a loopback port with a
// fresh self-signed certificate for the Service's DNS name.
func startWebhookServer(ctx context.Context, admitAll bool) (*webhookServer, error) {
	host := ServiceName + "." + Namespace + ".svc"
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(webhookPath, handle(admitAll))
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	go func() {
		if err := srv.ServeTLS(l, "", ""); err != nil && err != http.ErrServerClosed {
			klog.ErrorS(err, "modelserver webhook server")
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return &webhookServer{port: int32(l.Addr().(*net.TCPAddr).Port), caBundle: certPEM}, nil
}

func webhookConfiguration(caBundle []byte, port int32) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigName, Labels: map[string]string{"app.kubernetes.io/name": AppName}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: WebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{
					Namespace: Namespace, Name: ServiceName, Path: ptr.To(webhookPath), Port: ptr.To(port),
				},
				CABundle: caBundle,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{Group}, APIVersions: []string{Version}, Resources: []string{Plural},
				},
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
}
