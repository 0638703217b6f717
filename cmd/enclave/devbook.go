package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// devCustomer is one customer of a demo VASP: a person and the wallet the VASP keeps for them.
type devCustomer struct {
	First, Last string
	Wallet      string
}

func (c devCustomer) name() string { return c.First + " " + c.Last }

// devBook is what a demo VASP backend knows of people, printed by dev so that a reader can
// predict every answer its Verify User API gives: the rules are in answer, in one place.
type devBook struct {
	Customers []devCustomer
	// Listed are sanctioned persons: a transfer naming one is DENIED, whatever the wallet.
	Listed []string
}

// The two demo VASPs' books. The names are made up; they are demo data, printed on purpose.
var (
	ourBook   = devBook{Customers: []devCustomer{{"Ada", "Lovelace", devDepositAddress}}, Listed: []string{devListed}}
	theirBook = devBook{Customers: []devCustomer{{"Grace", "Hopper", devTheirWallet}}, Listed: []string{devListed}}
)

// devAnswer is a Verify User answer, as a VASP's backend writes it.
type devAnswer struct {
	Result  string `json:"result"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	IVMS101 *struct {
		Beneficiary any `json:"beneficiary"`
	} `json:"ivms101,omitempty"`
}

// verifyUserQuestion is the part of a Verify User request the book reads.
type verifyUserQuestion struct {
	VerificationUUID string `json:"verificationUuid"`
	AssetInfo        struct {
		Symbol, Amount string
	} `json:"assetInfo"`
	IVMS101 struct {
		Originator struct {
			Persons []ivmsPerson `json:"originatorPersons"`
		} `json:"originator"`
		Beneficiary struct {
			Persons       []ivmsPerson `json:"beneficiaryPersons"`
			AccountNumber []string     `json:"accountNumber"`
		} `json:"beneficiary"`
	} `json:"ivms101"`
}

// ivmsPerson is an IVMS101 person; only a natural person's names are read.
type ivmsPerson struct {
	NaturalPerson *struct {
		Name []struct {
			NameIdentifier []struct {
				Primary   string `json:"primaryIdentifier"`
				Secondary string `json:"secondaryIdentifier"`
			} `json:"nameIdentifier"`
		} `json:"name"`
	} `json:"naturalPerson"`
}

// names are the full names ("secondary primary") of persons, as written.
func names(persons []ivmsPerson) []string {
	var out []string
	for _, p := range persons {
		if p.NaturalPerson == nil {
			continue
		}
		for _, n := range p.NaturalPerson.Name {
			for _, id := range n.NameIdentifier {
				out = append(out, strings.TrimSpace(id.Secondary+" "+id.Primary))
			}
		}
	}
	return out
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// answer is the book's answer to a Verify User question and, for the printout, why (without
// the names it compared).
func (b devBook) answer(q verifyUserQuestion) (devAnswer, string) {
	for _, n := range append(names(q.IVMS101.Originator.Persons), names(q.IVMS101.Beneficiary.Persons)...) {
		for _, l := range b.Listed {
			if sameName(n, l) {
				return devAnswer{Result: "DENIED", Reason: "BLACKLISTED", Message: "a person of this transfer is listed"}, "a listed person"
			}
		}
	}
	var wallet string
	if a := q.IVMS101.Beneficiary.AccountNumber; len(a) > 0 {
		wallet = strings.TrimSpace(a[0])
	}
	var c *devCustomer
	for i := range b.Customers {
		if strings.EqualFold(b.Customers[i].Wallet, wallet) {
			c = &b.Customers[i]
		}
	}
	if c == nil {
		return devAnswer{Result: "UNKNOWN", Reason: "UNKNOWN-ADDRESS", Message: "not a wallet of this VASP"}, "a wallet not in the book"
	}
	given := names(q.IVMS101.Beneficiary.Persons)
	if len(given) == 0 {
		return devAnswer{Result: "DENIED", Reason: "LACK-OF-INFORMATION", Message: "the beneficiary's name is required"}, "a known wallet, no name"
	}
	for _, n := range given {
		if sameName(n, c.name()) {
			a := devAnswer{Result: "VERIFIED", Reason: "OK"}
			a.IVMS101 = &struct {
				Beneficiary any `json:"beneficiary"`
			}{map[string]any{"beneficiaryPersons": []any{devPerson(c.First, c.Last)}, "accountNumber": q.IVMS101.Beneficiary.AccountNumber}}
			return a, "a known wallet and its customer's name"
		}
	}
	return devAnswer{Result: "DENIED", Reason: "MISMATCHED-NAME", Message: "the name is not the wallet's customer's"}, "a known wallet, another name"
}

// account is the book's answer to a Verify Account question: VERIFIED when the wallet is a
// customer's and the name, if any is given, is that customer's; DENIED otherwise, with
// VerifyVASP's reason. The why, for the printout, holds no name.
func (b devBook) account(wallets []string, persons []ivmsPerson) (devAnswer, string) {
	var q verifyUserQuestion
	q.IVMS101.Beneficiary.AccountNumber, q.IVMS101.Beneficiary.Persons = wallets, persons
	if len(names(persons)) == 0 && len(wallets) > 0 {
		for _, c := range b.Customers {
			if strings.EqualFold(c.Wallet, strings.TrimSpace(wallets[0])) {
				return devAnswer{Result: "VERIFIED", Reason: "OK"}, "a known wallet, no name asked about"
			}
		}
	}
	a, why := b.answer(q)
	switch a.Result {
	case "VERIFIED":
		a.IVMS101 = nil
	case "UNKNOWN":
		a.Result = "DENIED"
	}
	return a, why
}

// devPerson is an IVMS101 natural person of that name.
func devPerson(first, last string) map[string]any {
	return map[string]any{"naturalPerson": map[string]any{"name": []any{map[string]any{"nameIdentifier": []any{
		map[string]string{"primaryIdentifier": last, "secondaryIdentifier": first, "nameIdentifierType": "LEGL"}}}}}}
}

// print writes the book on one line, after who keeps it.
func (b devBook) print(w io.Writer, who string) {
	var cs []string
	for _, c := range b.Customers {
		cs = append(cs, c.name()+" "+c.Wallet)
	}
	fmt.Fprintf(w, "  %-13s customers: %s; listed: %s\n", who, strings.Join(cs, ", "), strings.Join(b.Listed, ", "))
}

// printBooks writes both books and the rules their Verify User APIs answer by.
func printBooks(w io.Writer) {
	fmt.Fprintln(w, "Customer books (each VASP backend answers its enclave's Verify User API from its own):")
	ourBook.print(w, "us:")
	theirBook.print(w, "counterparty:")
	fmt.Fprintln(w, "  a known wallet with its customer's name → VERIFIED (the name returned); another name → DENIED MISMATCHED-NAME;")
	fmt.Fprintln(w, "  no name → DENIED LACK-OF-INFORMATION; a wallet not in the book → UNKNOWN; a listed person → DENIED BLACKLISTED")
}

// decodeQuestion reads a Verify User request body.
func decodeQuestion(body []byte) (verifyUserQuestion, error) {
	var q verifyUserQuestion
	err := json.Unmarshal(body, &q)
	return q, err
}
