package webhook_test

import (
	"log"
	"net/http"
	"os"

	"github.com/travelrule/enclave/webhook"
)

// A VASP backend's callback endpoint: verify, decode, act once per webhook-id.
func Example() {
	secret := os.Getenv("ENCLAVE_CALLBACK_SECRET") // the same whsec_... the enclave signs with
	http.HandleFunc("/callbacks", func(w http.ResponseWriter, r *http.Request) {
		cb, err := webhook.Parse(secret, r)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// cb.ID is the same on every delivery of this callback: skip it if already handled.
		if cb.CallbackType == webhook.TypeKYTResult {
			res, err := cb.KYTResult()
			if err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			k := res.RiskAssessment.ChainalysisKYT
			for _, a := range res.RiskAssessment.ChainalysisKYTAlerts {
				if a.AlertLevel == "SEVERE" || a.AlertLevel == "HIGH" {
					log.Printf("block %s: %s alert on %s", res.VerificationUUID, a.AlertLevel, k.OutputAddress)
				}
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
