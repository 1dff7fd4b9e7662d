package podruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Identities derived from names, and the pod condition helper: the
// simulator and the runtime both use them, so nodes, devices, containers
// and images look the same whichever of them reports them.

// Hash is the hex SHA-256 of the parts (each NUL-terminated).
func Hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// UUIDFrom is a UUID-formatted Hash of the parts.
func UUIDFrom(parts ...string) string {
	x := Hash(parts...)
	return fmt.Sprintf("%s-%s-%s-%s-%s", x[0:8], x[8:12], x[12:16], x[16:20], x[20:32])
}

// ImageID is the image ID reported for an image.
func ImageID(image string) string {
	return "sha256:" + Hash("image", image)
}

// SetCondition sets a pod condition's status and reason, moving its
// transition time only when the status changes.
func SetCondition(st *corev1.PodStatus, t corev1.PodConditionType, status corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type == t {
			if c.Status != status {
				c.Status = status
				c.LastTransitionTime = now
			}
			c.Reason = reason
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now})
}
