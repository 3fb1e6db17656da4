package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/tide-run/tide/controlplane/registry"
)

// Kubernetes discovery, so kubectl and client-go's RESTMapper find tide's kinds: /version, the legacy documents
// (/api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>) and the aggregated form (apidiscovery.k8s.io/v2)
// that kubectl 1.30+ asks /api and /apis for first. Everything is derived from the registry at request time, so a
// kind registered late (the eventing runtime's RocketMQSource types) is discovered like the built-in ones.

// KubernetesVersion is the Kubernetes release whose API tide's control plane speaks (k8s.io modules v0.35.x):
// served at /version so kubectl's version-skew logic sees a server it matches.
var KubernetesVersion = version.Info{Major: "1", Minor: "35", GitVersion: "v1.35.7-tide", Platform: "linux/amd64"}

const aggregatedV2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// verbs every kind supports (no deletecollection: tide deletes one object at a time).
var kindVerbs = metav1.Verbs{"create", "delete", "get", "list", "patch", "update", "watch"}

func (s *Server) mountDiscovery() {
	s.mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, KubernetesVersion) })
	s.mux.HandleFunc("GET /api", s.serveCoreDiscovery)
	s.mux.HandleFunc("GET /apis", s.serveGroupsDiscovery)
}

// wantsAggregated reports whether the Accept header asks for apidiscovery.k8s.io/v2 (kubectl lists it first,
// then v2beta1, then plain JSON; tide answers v2 or the legacy form).
func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || (mt != "application/json" && mt != "*/*") {
			continue
		}
		if params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return params["profile"] == "" || params["profile"] == "nopeer"
		}
	}
	return false
}

// groupVersions lists the registry's kinds by group and version, core first, then groups in the order a
// RESTMapper should prefer them (Knative's groups before the 2020 RocketMQSource group, so `rocketmqsources`
// resolves to sources.knative.dev), each version once.
func (s *Server) groupVersions() (groups []string, byGV map[string][]registry.Kind) {
	byGV = map[string][]registry.Kind{}
	for _, k := range s.reg.Kinds() {
		gv := k.APIVersion()
		if _, ok := byGV[gv]; !ok && !slices.Contains(groups, k.Group) {
			groups = append(groups, k.Group)
		}
		byGV[gv] = append(byGV[gv], k)
	}
	slices.SortStableFunc(groups, func(a, b string) int { return groupRank(a) - groupRank(b) })
	return groups, byGV
}

// groupRank puts the core group first and the legacy RocketMQSource group last.
func groupRank(g string) int {
	switch g {
	case "":
		return 0
	case registry.GroupSourcesEventing:
		return 2
	}
	return 1
}

func (s *Server) versionsOf(group string) []string {
	var out []string
	for _, k := range s.reg.Kinds() {
		if k.Group == group && !slices.Contains(out, k.Version) {
			out = append(out, k.Version)
		}
	}
	return out
}

func (s *Server) serveCoreDiscovery(w http.ResponseWriter, r *http.Request) {
	if wantsAggregated(r) {
		s.writeAggregated(w, true)
		return
	}
	writeJSON(w, http.StatusOK, metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}},
	})
}

func (s *Server) serveGroupsDiscovery(w http.ResponseWriter, r *http.Request) {
	if wantsAggregated(r) {
		s.writeAggregated(w, false)
		return
	}
	groups, _ := s.groupVersions()
	out := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
	for _, g := range groups {
		if g != "" {
			out.Groups = append(out.Groups, s.apiGroup(g))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiGroup(group string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: group}
	for _, v := range s.versionsOf(group) {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
	}
	if len(g.Versions) > 0 {
		g.PreferredVersion = g.Versions[0]
	}
	return g
}

// serveDiscoveryPath answers /api/v1, /apis/<group> and /apis/<group>/<version>; it reports false for any other
// path (a resource path).
func (s *Server) serveDiscoveryPath(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	groups, byGV := s.groupVersions()
	switch {
	case len(parts) == 2 && parts[0] == "api":
		s.writeResourceList(w, parts[1], byGV[parts[1]])
	case len(parts) == 2 && parts[0] == "apis" && slices.Contains(groups, parts[1]) && parts[1] != "":
		writeJSON(w, http.StatusOK, s.apiGroup(parts[1]))
	case len(parts) == 3 && parts[0] == "apis":
		s.writeResourceList(w, parts[1]+"/"+parts[2], byGV[parts[1]+"/"+parts[2]])
	default:
		return false
	}
	return true
}

func (s *Server) writeResourceList(w http.ResponseWriter, gv string, kinds []registry.Kind) {
	if len(kinds) == 0 || (!strings.Contains(gv, "/") && gv != "v1") {
		writeError(w, notFoundPath(""))
		return
	}
	out := metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv,
		APIResources: []metav1.APIResource{}}
	for _, k := range kinds {
		out.APIResources = append(out.APIResources, metav1.APIResource{
			Name: k.Plural, SingularName: k.Singular, Namespaced: k.Namespaced, Kind: k.Kind, Verbs: kindVerbs,
			ShortNames: k.ShortNames, Categories: k.Categories,
		}, metav1.APIResource{
			Name: k.Plural + "/status", Namespaced: k.Namespaced, Kind: k.Kind, Verbs: metav1.Verbs{"get", "patch", "update"},
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) writeAggregated(w http.ResponseWriter, core bool) {
	groups, byGV := s.groupVersions()
	out := apidiscoveryv2.APIGroupDiscoveryList{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"},
		Items:    []apidiscoveryv2.APIGroupDiscovery{},
	}
	for _, g := range groups {
		if (g == "") != core {
			continue
		}
		item := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g}}
		for _, v := range s.versionsOf(g) {
			gv := v
			if g != "" {
				gv = g + "/" + v
			}
			ver := apidiscoveryv2.APIVersionDiscovery{Version: v, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			for _, k := range byGV[gv] {
				scope := apidiscoveryv2.ScopeCluster
				if k.Namespaced {
					scope = apidiscoveryv2.ScopeNamespace
				}
				gvk := &metav1.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
				ver.Resources = append(ver.Resources, apidiscoveryv2.APIResourceDiscovery{
					Resource: k.Plural, ResponseKind: gvk, Scope: scope, SingularResource: k.Singular,
					Verbs: kindVerbs, ShortNames: k.ShortNames, Categories: k.Categories,
					Subresources: []apidiscoveryv2.APISubresourceDiscovery{{Subresource: "status", ResponseKind: gvk,
						Verbs: []string{"get", "patch", "update"}}},
				})
			}
			item.Versions = append(item.Versions, ver)
		}
		out.Items = append(out.Items, item)
	}
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Content-Type", aggregatedV2)
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// mountKubernetes adds what kubectl needs beyond the resource paths: discovery, OpenAPI.
func (s *Server) mountKubernetes() {
	s.mountDiscovery()
	s.mountOpenAPI()
}
