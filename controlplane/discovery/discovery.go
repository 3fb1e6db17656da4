package discovery

// Path is where the API lists every registered kind as JSON (a List).
const Path = "/tide/v1/kinds"

// List is the body served at Path.
type List struct {
	Kinds []Kind `json:"kinds"`
}

// Kind is one kind as the server describes it.
type Kind struct {
	Group      string   `json:"group"` // "" for the core group (v1 Secret, ConfigMap...)
	Version    string   `json:"version"`
	Kind       string   `json:"kind"`
	Plural     string   `json:"plural"`
	Singular   string   `json:"singular"`
	ShortNames []string `json:"shortNames,omitempty"`
	Namespaced bool     `json:"namespaced"`
	// ActedOn says tide reconciles this kind; others are stored with a warning.
	ActedOn bool `json:"actedOn"`
	// Strict says documents are decoded strictly into the kind's Go type (unknown fields are errors).
	Strict bool `json:"strict"`
	// Columns names the kind's extra `tide get` columns.
	Columns []string `json:"columns,omitempty"`
	// Categories are the kind's discovery categories (all, knative, serving, eventing, sources).
	Categories []string `json:"categories,omitempty"`
}

// APIVersion is group/version ("v1" for the core group).
func (k Kind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// Resource is the kubectl-style qualified plural ("services.serving.knative.dev").
func (k Kind) Resource() string {
	if k.Group == "" {
		return k.Plural
	}
	return k.Plural + "." + k.Group
}
