package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

type dashboardView struct {
	view
	Accounts []accountOption
}

// dashboard is the logged-in customer's home: who is logged in, their
// accounts, and where their connected apps are listed.
func (h *Handler) dashboard(c *gin.Context) {
	ctx := c.Request.Context()
	sess, err := h.session(c)
	if err != nil {
		h.internalError(c, "dashboard", err)
		return
	}
	if !sess.LoggedIn() {
		c.Redirect(http.StatusSeeOther, loginURL("/dashboard"))
		return
	}
	name, err := h.customerName(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "dashboard: customer", err)
		return
	}
	accts, err := h.d.Accounts.ListByCustomer(ctx, sess.CustomerID)
	if err != nil {
		h.internalError(c, "dashboard: accounts", err)
		return
	}
	v := dashboardView{view: view{Title: "Your dashboard", SignedInAs: name, CSRF: sess.CSRFToken}}
	for _, a := range accts {
		v.Accounts = append(v.Accounts, accountOption{
			ID: a.ID, Name: a.DisplayName, Type: accountTypeWords[a.Type], Last4: a.Last4, Institution: a.InstitutionName,
		})
	}
	h.render(c, http.StatusOK, "dashboard", v)
}
