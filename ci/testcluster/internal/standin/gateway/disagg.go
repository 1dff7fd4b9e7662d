package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
)

// Prefill/decode disaggregation, as llm-d routes it: when an InferencePool's
// members carry llm-d's role label, the endpoint picker chooses a decode
// endpoint and a prefill endpoint for each request, and the routing step
// (llm-d's routing sidecar) sends the request to the prefill endpoint first,
// then to the decode endpoint with the KV-transfer handle the prefill
// endpoint returned and the prefiller's address. Both calls carry the
// request's x-request-id (generated when the client sent none). Fault:
// Options.NoDisaggregation picks one member per request, whatever its role.
const (
	// RoleLabel is llm-d's pod label naming a model server's phase.
	RoleLabel = "llm-d.ai/role"
	// RolePrefill, RoleDecode and RoleBoth are its values.
	RolePrefill = "prefill"
	RoleDecode  = "decode"
	RoleBoth    = "both"
	// PrefillerHeader names the chosen prefill endpoint (host:port), on the
	// request to the decode endpoint and on the response.
	PrefillerHeader = "x-prefiller-host-port"
	// KVHandleHeader carries the KV-transfer handle: the prefill endpoint
	// answers with it, the decode endpoint receives it.
	KVHandleHeader = "x-kv-transfer-handle"
	// RequestIDHeader identifies a request on every hop.
	RequestIDHeader = "x-request-id"
	// maxPrefillBody bounds the request body replayed to both phases.
	maxPrefillBody = 1 << 20
)

// roleEndpoints is implemented by Endpoints that know pool members' roles.
type roleEndpoints interface {
	// PoolRoles maps a pool's ready members (host:targetPort) to the value
	// of their RoleLabel ("" without one).
	PoolRoles(namespace, pool string) (map[string]string, error)
}

// splitRoles divides members into prefill and decode endpoints (sorted);
// "both" serves decode. Either is empty when the pool is not disaggregated.
func splitRoles(roles map[string]string) (prefill, decode []string) {
	for addr, role := range roles {
		switch role {
		case RolePrefill:
			prefill = append(prefill, addr)
		case RoleDecode, RoleBoth:
			decode = append(decode, addr)
		}
	}
	sort.Strings(prefill)
	sort.Strings(decode)
	return prefill, decode
}

// newRequestID is a random id for requests that arrive without one.
func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// prefillFirst sends r to the prefill endpoint and returns the KV-transfer
// handle it answered with. r's body is replaced by a replayable copy.
func (p *proxy) prefillFirst(ctx context.Context, r *http.Request, addr string) (string, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxPrefillBody+1))
		if err != nil {
			return "", fmt.Errorf("reading the request body: %w", err)
		}
		if len(b) > maxPrefillBody {
			return "", fmt.Errorf("request body over %d bytes", maxPrefillBody)
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host
	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		return "", fmt.Errorf("prefill endpoint %s: %w", addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPrefillBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("prefill endpoint %s answered HTTP %d", addr, resp.StatusCode)
	}
	handle := resp.Header.Get(KVHandleHeader)
	if handle == "" {
		return "", fmt.Errorf("prefill endpoint %s answered without a %s header", addr, KVHandleHeader)
	}
	return handle, nil
}

// disaggregated picks a decode endpoint for a request to the pool, after
// running its prefill phase on a prefill endpoint; ok is false when the
// pool has no prefill and decode members (or the fault is on), and the
// caller picks as for any pool.
func (p *proxy) disaggregated(w http.ResponseWriter, r *http.Request, b backend) (addr string, ok bool, err error) {
	re, isRole := p.endpoints.(roleEndpoints)
	if p.noDisaggregation || !isRole {
		return "", false, nil
	}
	roles, err := re.PoolRoles(b.Namespace, b.Service)
	if err != nil {
		return "", true, err
	}
	prefill, decode := splitRoles(roles)
	if len(prefill) == 0 || len(decode) == 0 {
		return "", false, nil
	}
	if r.Header.Get(RequestIDHeader) == "" {
		r.Header.Set(RequestIDHeader, newRequestID())
	}
	dec, err := p.picker.pick(r.Context(), decode)
	if err != nil {
		return "", true, err
	}
	pre, err := p.picker.pick(r.Context(), prefill)
	if err != nil {
		return "", true, err
	}
	handle, err := p.prefillFirst(r.Context(), r, pre)
	if err != nil {
		return "", true, err
	}
	r.Header.Set(PrefillerHeader, pre)
	r.Header.Set(KVHandleHeader, handle)
	w.Header().Set(PrefillerHeader, pre)
	return dec, true, nil
}
