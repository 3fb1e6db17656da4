package api

import (
	"encoding/json"
	"mime"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// protobufType is the Kubernetes protobuf encoding client-go's typed clientsets write built-in kinds in (kubectl
// create namespace/secret/configmap use them). tide speaks JSON: a protobuf body of a kind in protoScheme is
// decoded and handled as its JSON; answers are JSON, which those clients accept too.
const protobufType = "application/vnd.kubernetes.protobuf"

// protoScheme knows the built-in kinds tide stores (core v1 and RBAC v1); it is read-only after init.
var protoScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = corev1.AddToScheme(s)
	_ = rbacv1.AddToScheme(s)
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	return s
}()

func isProtobuf(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == protobufType
}

// protobufToJSON decodes a protobuf body (a runtime.Unknown envelope) of a known kind into its JSON form.
func protobufToJSON(b []byte) ([]byte, *apiError) {
	ser := protobuf.NewSerializer(protoScheme, protoScheme)
	obj, gvk, err := ser.Decode(b, nil, nil)
	if err != nil {
		return nil, &apiError{code: http.StatusUnsupportedMediaType, reason: metav1.StatusReasonUnsupportedMediaType,
			message: "cannot decode the protobuf body (tide decodes protobuf for core v1 and rbac v1 kinds only; send application/json): " + err.Error()}
	}
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, badRequest("cannot encode the decoded protobuf body: " + err.Error())
	}
	return out, nil
}
