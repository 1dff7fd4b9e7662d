package gateway

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// The Gateway API fields the stand-in reads (gateway.networking.k8s.io/v1),
// decoded from the unstructured objects.

type gatewaySpec struct {
	GatewayClassName string     `json:"gatewayClassName"`
	Listeners        []listener `json:"listeners"`
}

type listener struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int32  `json:"port"`
}

type httpRouteSpec struct {
	ParentRefs []parentRef     `json:"parentRefs"`
	Rules      []httpRouteRule `json:"rules"`
}

type parentRef struct {
	Group       *string `json:"group,omitempty"`
	Kind        *string `json:"kind,omitempty"`
	Namespace   *string `json:"namespace,omitempty"`
	Name        string  `json:"name"`
	SectionName *string `json:"sectionName,omitempty"`
	Port        *int32  `json:"port,omitempty"`
}

type httpRouteRule struct {
	Matches     []httpRouteMatch `json:"matches"`
	BackendRefs []backendRef     `json:"backendRefs"`
}

type httpRouteMatch struct {
	Path    *pathMatch    `json:"path,omitempty"`
	Headers []headerMatch `json:"headers,omitempty"`
	Method  *string       `json:"method,omitempty"`
}

type pathMatch struct {
	Type  *string `json:"type,omitempty"`
	Value *string `json:"value,omitempty"`
}

type headerMatch struct {
	Type  *string `json:"type,omitempty"`
	Name  string  `json:"name"`
	Value string  `json:"value"`
}

type backendRef struct {
	Group     *string `json:"group,omitempty"`
	Kind      *string `json:"kind,omitempty"`
	Name      string  `json:"name"`
	Namespace *string `json:"namespace,omitempty"`
	Port      *int32  `json:"port,omitempty"`
	Weight    *int32  `json:"weight,omitempty"`
}

// backend is a resolved backendRef: a Service port in a namespace.
type backend struct {
	Namespace string
	Service   string // the Service or, with Pool, the InferencePool
	Port      int32
	Weight    int32
	Pool      bool
}

// routeRule is one match of one HTTPRoute rule, with what it routes to.
type routeRule struct {
	// Route is namespace/name of the HTTPRoute; Created orders equal matches.
	Route   string
	Created time.Time
	Index   int // rule index in the route
	Match   compiledMatch
	// Pick is shared by all matches of one rule.
	Pick *picker
}

type compiledMatch struct {
	PathType string // Exact, PathPrefix, RegularExpression
	Path     string
	pathRe   *regexp.Regexp
	Method   string
	Headers  []compiledHeader
}

type compiledHeader struct {
	Name  string // canonical
	Value string
	re    *regexp.Regexp
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// compileMatch applies the Gateway API defaults: no path means prefix "/",
// header and path matches are Exact/PathPrefix unless typed otherwise.
func compileMatch(m httpRouteMatch) (compiledMatch, error) {
	c := compiledMatch{PathType: "PathPrefix", Path: "/"}
	if m.Path != nil {
		c.PathType = deref(m.Path.Type, "PathPrefix")
		c.Path = deref(m.Path.Value, "/")
	}
	if c.PathType == "RegularExpression" {
		re, err := regexp.Compile("^(?:" + c.Path + ")$")
		if err != nil {
			return c, err
		}
		c.pathRe = re
	}
	c.Method = deref(m.Method, "")
	for _, h := range m.Headers {
		ch := compiledHeader{Name: http.CanonicalHeaderKey(h.Name), Value: h.Value}
		if deref(h.Type, "Exact") == "RegularExpression" {
			re, err := regexp.Compile(h.Value)
			if err != nil {
				return c, err
			}
			ch.re = re
		}
		c.Headers = append(c.Headers, ch)
	}
	return c, nil
}

func (c compiledMatch) matches(r *http.Request) bool {
	p := r.URL.Path
	if p == "" {
		p = "/"
	}
	switch c.PathType {
	case "Exact":
		if p != c.Path {
			return false
		}
	case "RegularExpression":
		if !c.pathRe.MatchString(p) {
			return false
		}
	default:
		prefix := strings.TrimSuffix(c.Path, "/")
		if prefix != "" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
			return false
		}
	}
	if c.Method != "" && r.Method != c.Method {
		return false
	}
	for _, h := range c.Headers {
		vals := r.Header.Values(h.Name)
		ok := false
		for _, v := range vals {
			if (h.re != nil && h.re.MatchString(v)) || (h.re == nil && v == h.Value) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// sortRules orders matches by Gateway API precedence: exact path, then the
// longest prefix, then a method match, then the most header matches; ties go
// to the oldest route, then the route's namespace/name, then rule order.
func sortRules(rules []routeRule) {
	rank := func(m compiledMatch) int {
		if m.PathType == "Exact" {
			return 0
		}
		return 1
	}
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := rules[i], rules[j]
		if rank(a.Match) != rank(b.Match) {
			return rank(a.Match) < rank(b.Match)
		}
		if len(a.Match.Path) != len(b.Match.Path) {
			return len(a.Match.Path) > len(b.Match.Path)
		}
		if (a.Match.Method != "") != (b.Match.Method != "") {
			return a.Match.Method != ""
		}
		if len(a.Match.Headers) != len(b.Match.Headers) {
			return len(a.Match.Headers) > len(b.Match.Headers)
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		return a.Index < b.Index
	})
}

// firstMatch is the rule that routes r, or nil (404).
func firstMatch(rules []routeRule, r *http.Request) *routeRule {
	for i := range rules {
		if rules[i].Match.matches(r) {
			return &rules[i]
		}
	}
	return nil
}

// picker chooses a rule's backend per request by smooth weighted round
// robin (the split follows the weights exactly over every sum-of-weights
// requests). ignoreWeights always chooses the first backendRef (fault).
type picker struct {
	mu            sync.Mutex
	backends      []backend
	current       []int64
	ignoreWeights bool
}

func newPicker(backends []backend, ignoreWeights bool) *picker {
	return &picker{backends: backends, current: make([]int64, len(backends)), ignoreWeights: ignoreWeights}
}

// next returns the chosen backend, or false when no backend has weight.
func (p *picker) next() (backend, bool) {
	if len(p.backends) == 0 {
		return backend{}, false
	}
	if p.ignoreWeights {
		return p.backends[0], true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var total int64
	best := -1
	for i, b := range p.backends {
		if b.Weight <= 0 {
			continue
		}
		total += int64(b.Weight)
		p.current[i] += int64(b.Weight)
		if best < 0 || p.current[i] > p.current[best] {
			best = i
		}
	}
	if best < 0 {
		return backend{}, false
	}
	p.current[best] -= total
	return p.backends[best], true
}
