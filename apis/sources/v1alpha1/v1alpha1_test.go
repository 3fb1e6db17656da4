package v1alpha1

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"knative.dev/pkg/apis"
)

func decodeFile(t *testing.T, name string) *RocketMQSource {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func minimal() *RocketMQSource {
	s, err := Decode([]byte(`
apiVersion: sources.knative.dev/v1alpha1
kind: RocketMQSource
metadata: {name: my.src, namespace: ns1}
spec:
  topic: orders
  sink: {uri: "http://127.0.0.1:8080/ns1/default"}
`))
	if err != nil {
		panic(err)
	}
	return s
}

func TestDefaults(t *testing.T) {
	s := minimal()
	ctx := WithDefaultNameServers(context.Background(), []string{"127.0.0.1:9876"})
	s.SetDefaults(ctx)
	sp := s.Spec
	if len(sp.NameServers) != 1 || sp.NameServers[0] != "127.0.0.1:9876" {
		t.Errorf("nameServers %v", sp.NameServers)
	}
	if sp.ConsumerGroup != "knative-rocketmqsource_ns1_my|src" {
		t.Errorf("consumerGroup %q", sp.ConsumerGroup)
	}
	if sp.Selector == nil || sp.Selector.Type != SelectorTag || sp.Selector.Expression != "*" {
		t.Errorf("selector %+v", sp.Selector)
	}
	if sp.InitialOffset != OffsetLatest || sp.Ordering != Unordered || sp.MaxInFlight == nil || *sp.MaxInFlight != DefaultMaxInFlight {
		t.Errorf("offset %q ordering %q maxInFlight %v", sp.InitialOffset, sp.Ordering, sp.MaxInFlight)
	}
	if err := s.Validate(ctx); err != nil {
		t.Fatalf("defaulted minimal source invalid: %v", err)
	}
	// Defaulting is idempotent and stable.
	again := s.DeepCopy()
	again.SetDefaults(ctx)
	if again.Spec.ConsumerGroup != sp.ConsumerGroup {
		t.Error("consumer group not stable")
	}
	// Without a platform default, nameServers is required.
	s2 := minimal()
	s2.SetDefaults(context.Background())
	if err := s2.Validate(context.Background()); err == nil || !strings.Contains(err.Error(), "spec.nameServers") {
		t.Errorf("missing name servers: %v", err)
	}
	// A sink ref without namespace takes the source's.
	s3 := decodeFile(t, "legacy-2020.yaml")
	s3.SetDefaults(ctx)
	if s3.Spec.Sink.Ref.Namespace != "default" {
		t.Errorf("sink ref namespace %q", s3.Spec.Sink.Ref.Namespace)
	}
}

func TestDefaultConsumerGroupInjectiveAndBounded(t *testing.T) {
	seen := map[string]string{}
	for _, p := range [][2]string{{"a", "b.c"}, {"a", "b-c"}, {"a-b", "c"}, {"a", "b_c"}, {"", "x"}, {"default", "x"}} {
		g := DefaultConsumerGroup(p[0], p[1])
		if !validRocketMQName(g) || len(g) > maxGroupLen {
			t.Errorf("%v -> invalid group %q", p, g)
		}
		if prev, ok := seen[g]; ok && prev != p[0]+"/"+p[1] && !(p[0] == "" && prev == "default/x") && !(p[0] == "default" && prev == "/x") {
			t.Errorf("%v collides with %s", p, prev)
		}
		seen[g] = p[0] + "/" + p[1]
	}
	long := DefaultConsumerGroup(strings.Repeat("n", 63), strings.Repeat("a.", 120)+"z")
	if len(long) != maxGroupLen || !validRocketMQName(long) {
		t.Errorf("long group %d %q", len(long), long)
	}
	if long == DefaultConsumerGroup(strings.Repeat("n", 63), strings.Repeat("a.", 120)+"y") {
		t.Error("truncated groups collide")
	}
}

func TestFullManifestValid(t *testing.T) {
	s := decodeFile(t, "full.yaml")
	s.SetDefaults(context.Background())
	if err := s.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.Spec.AllTopics(); len(got) != 2 || got[1] != "refunds" {
		t.Errorf("topics %v", got)
	}
	if s.Spec.MaxInFlight != nil {
		t.Error("maxInFlight defaulted for ordered delivery")
	}
	c := s.DeepCopy()
	c.Spec.Topics[0] = "changed"
	c.Spec.Selector.Expression = "changed"
	c.Spec.AccessKey.SecretKeyRef.Name = "changed"
	if s.Spec.Topics[0] == "changed" || s.Spec.Selector.Expression == "changed" || s.Spec.AccessKey.SecretKeyRef.Name == "changed" {
		t.Error("DeepCopy shares memory")
	}
}

func TestValidationFieldPaths(t *testing.T) {
	cases := map[string]struct {
		mutate func(*RocketMQSource)
		path   string
	}{
		"no topic":          {func(s *RocketMQSource) { s.Spec.Topic = "" }, "spec.topic"},
		"both topics":       {func(s *RocketMQSource) { s.Spec.Topics = []string{"b"} }, "spec.topics"},
		"bad topic":         {func(s *RocketMQSource) { s.Spec.Topic = "has space" }, "spec.topic"},
		"bad topics entry":  {func(s *RocketMQSource) { s.Spec.Topic = ""; s.Spec.Topics = []string{"ok", "no/slash"} }, "spec.topics[1]"},
		"dup topics":        {func(s *RocketMQSource) { s.Spec.Topic = ""; s.Spec.Topics = []string{"a", "a"} }, "spec.topics[1]"},
		"bad name server":   {func(s *RocketMQSource) { s.Spec.NameServers = []string{"127.0.0.1:9876", "nope"} }, "spec.nameServers[1]"},
		"semicolon list":    {func(s *RocketMQSource) { s.Spec.NameServers = []string{"a:1;b:2"} }, "spec.nameServers[0]"},
		"bad port":          {func(s *RocketMQSource) { s.Spec.NameServers = []string{"h:70000"} }, "spec.nameServers[0]"},
		"bad group":         {func(s *RocketMQSource) { s.Spec.ConsumerGroup = "a.b" }, "spec.consumerGroup"},
		"bad selector type": {func(s *RocketMQSource) { s.Spec.Selector.Type = "REGEX" }, "spec.selector.type"},
		"empty sql":         {func(s *RocketMQSource) { s.Spec.Selector = &Selector{Type: SelectorSQL92} }, "spec.selector.expression"},
		"bad offset":        {func(s *RocketMQSource) { s.Spec.InitialOffset = "yesterday" }, "spec.initialOffset"},
		"bad ordering":      {func(s *RocketMQSource) { s.Spec.Ordering = "sorted" }, "spec.ordering"},
		"maxInFlight 0":     {func(s *RocketMQSource) { v := int32(0); s.Spec.MaxInFlight = &v }, "spec.maxInFlight"},
		"maxInFlight ordered": {func(s *RocketMQSource) {
			v := int32(8)
			s.Spec.Ordering = Ordered
			s.Spec.MaxInFlight = &v
		}, "spec.maxInFlight"},
		"bad rocketmq namespace": {func(s *RocketMQSource) { s.Spec.Namespace = "a b" }, "spec.namespace"},
		"accessKey alone": {func(s *RocketMQSource) {
			s.Spec.AccessKey = &SecretValueFromSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}
		}, "spec.secretKey"},
		"secretKeyRef without key": {func(s *RocketMQSource) {
			ref := &SecretValueFromSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}
			s.Spec.AccessKey, s.Spec.SecretKey = ref, ref.DeepCopy()
		}, "spec.accessKey.secretKeyRef.key"},
		"no sink":           {func(s *RocketMQSource) { s.Spec.Sink.URI = nil }, "spec.sink"},
		"relative sink uri": {func(s *RocketMQSource) { s.Spec.Sink.URI = &apis.URL{Path: "/x"} }, "spec.sink.uri"},
		"bad ceOverrides": {func(s *RocketMQSource) {
			s.Spec.CloudEventOverrides = nil
			s.Spec.SourceSpec.CloudEventOverrides = &duckOverrides{Extensions: map[string]string{"Bad-Key": "v"}}
		}, "spec.ceOverrides.extensions"},
		"bad delivery": {func(s *RocketMQSource) {
			s.Spec.Delivery = mustDelivery(`{"backoffDelay":"5 seconds"}`)
		}, "spec.delivery.backoffDelay"},
		"no name": {func(s *RocketMQSource) { s.Name = "" }, "metadata.name"},
	}
	ctx := WithDefaultNameServers(context.Background(), []string{"127.0.0.1:9876"})
	for name, c := range cases {
		s := minimal()
		s.SetDefaults(ctx)
		c.mutate(s)
		err := s.Validate(ctx)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %q does not name %s", name, err.Error(), c.path)
		}
	}
}

func TestLegacyConversion(t *testing.T) {
	s := decodeFile(t, "legacy-2020.yaml")
	if s.APIVersion != "sources.knative.dev/v1alpha1" || s.Kind != Kind {
		t.Errorf("typemeta %v", s.TypeMeta)
	}
	sp := s.Spec
	if len(sp.NameServers) != 2 || sp.NameServers[1] != "10.0.0.2:9876" || sp.Topic != "order" ||
		sp.ConsumerGroup != "GID_order" || sp.Namespace != "MQ_INST_1" {
		t.Errorf("spec %+v", sp)
	}
	if sp.AccessToken == nil || sp.AccessToken.SecretKeyRef.Name != "alirocketmq-source-secret" || sp.AccessToken.SecretKeyRef.Key != "rocketmq-credentials" {
		t.Errorf("accessToken %+v", sp.AccessToken)
	}
	if r := sp.Sink.Ref; r == nil || r.Kind != "Broker" || r.Name != "default" || r.APIVersion != "eventing.knative.dev/v1" {
		t.Errorf("sink %+v", sp.Sink)
	}
	if s.Annotations[AnnotationConvertedFrom] != "sources.eventing.knative.dev/v1alpha1" ||
		s.Annotations[AnnotationServiceAccountName] != "alirocketmq-controller-manager" || s.Labels["controller-tools.k8s.io"] != "1.0" {
		t.Errorf("metadata %+v", s.ObjectMeta)
	}
	s.SetDefaults(context.Background())
	if err := s.Validate(context.Background()); err != nil {
		t.Fatalf("converted 2020 manifest invalid: %v", err)
	}
	if s.Spec.ConsumerGroup != "GID_order" || s.Spec.Ordering != Unordered || s.Spec.InitialOffset != OffsetLatest {
		t.Errorf("defaults after conversion %+v", s.Spec)
	}
}

func TestDecodeStrict(t *testing.T) {
	cases := map[string]struct {
		doc  string
		want error
		says string
	}{
		"unknown field":  {"apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topic: t, topik: x}", ErrMalformed, "topik"},
		"legacy unknown": {"apiVersion: sources.eventing.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topic: t, nameServers: [x]}", ErrMalformed, "nameServers"},
		"duplicate key":  {"apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topic: t, topic: u}", ErrMalformed, "topic"},
		"wrong type":     {"apiVersion: sources.knative.dev/v1alpha1\nkind: RocketMQSource\nmetadata: {name: a}\nspec: {topics: t}", ErrMalformed, "spec.topics"},
		"wrong kind":     {"apiVersion: sources.knative.dev/v1alpha1\nkind: KafkaSource\n", ErrWrongKind, "kind"},
		"wrong version":  {"apiVersion: sources.knative.dev/v1\nkind: RocketMQSource\n", ErrWrongKind, "apiVersion"},
		"not yaml":       {"{{{", ErrMalformed, ""},
	}
	for name, c := range cases {
		_, err := Decode([]byte(c.doc))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConditions(t *testing.T) {
	s := minimal()
	st := &s.Status
	st.InitializeConditions()
	if st.IsReady() {
		t.Fatal("ready before anything happened")
	}
	st.MarkSink(apis.HTTP("sink.example"))
	st.MarkNotDeployed(ReasonTopicNotFound, "topic %RETRY%g has no route")
	if c := st.GetCondition(ConditionReady); c.IsTrue() || c.Reason != ReasonTopicNotFound || c.Message != "topic %RETRY%g has no route" {
		t.Errorf("ready %+v", c)
	}
	st.MarkDeployed()
	if !st.IsReady() || st.SinkURI.String() != "http://sink.example" {
		t.Errorf("not ready after sink and deploy: %+v", st)
	}
	st.MarkNoSink(ReasonSinkNotFound, `service "x" not found`)
	if st.IsReady() || st.SinkURI != nil || st.GetCondition(ConditionSinkProvided).Reason != ReasonSinkNotFound {
		t.Errorf("%+v", st)
	}
	if s.GetGroupVersionKind().String() != "sources.knative.dev/v1alpha1, Kind=RocketMQSource" {
		t.Error(s.GetGroupVersionKind())
	}
}

func TestLegacyValidateNamesLegacyFields(t *testing.T) {
	l := &LegacyRocketMQSource{}
	l.Name = "old"
	l.Spec = LegacyRocketMQSourceSpec{Topic: "order", NamesrvAddr: "nohostport", GroupName: "bad.group"}
	err := l.Validate(context.Background())
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"spec.namesrvAddr", "spec.groupName", "spec.sink"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err.Error(), want)
		}
	}
	if strings.Contains(err.Error(), "nameServers") || strings.Contains(err.Error(), "consumerGroup") {
		t.Errorf("error names current-form fields: %v", err)
	}
	b, _ := os.ReadFile("testdata/legacy-2020.yaml")
	var ok LegacyRocketMQSource
	if err := strictUnmarshalYAML(b, &ok); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(context.Background()); err != nil {
		t.Fatalf("valid 2020 manifest rejected: %v", err)
	}
}

// TestDocExample keeps the manifest in docs/rocketmqsource.md valid.
func TestDocExample(t *testing.T) {
	b, err := os.ReadFile("../../../docs/rocketmqsource.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block")
	}
	s, err := Decode([]byte(doc[start+8 : start+8+end]))
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults(context.Background())
	if err := s.Validate(context.Background()); err != nil {
		t.Fatalf("docs example invalid: %v", err)
	}
}
