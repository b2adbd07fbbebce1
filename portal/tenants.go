package portal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// states a list may be filtered by, in the order people look for them.
var listStates = []string{"active", "provisioning", "updating", "suspended", "failed", "degraded", "moving", "decommissioning", "decommissioned", "restoring"}

type listData struct {
	Tenants   []tenantItem
	State     string
	States    []string
	NextPage  string // URL of the next page, "" on the last
	FirstPage string // URL of the first page, "" on it
}

func (p *Portal) listTenants(w http.ResponseWriter, r *http.Request, sess session) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !slices.Contains(listStates, state) {
		p.fail(w, r, http.StatusBadRequest, "There is no state "+state+".")
		return
	}
	page, err := p.api.listTenants(r.Context(), sess.Token, state, q.Get("page"), p.cfg.PageSize)
	if err != nil {
		p.failAPI(w, r, err)
		return
	}
	data := listData{Tenants: page.Tenants, State: state, States: listStates}
	if page.NextPageToken != "" {
		next := url.Values{"page": {page.NextPageToken}}
		if state != "" {
			next.Set("state", state)
		}
		data.NextPage = Prefix + "/tenants?" + next.Encode()
	}
	if q.Get("page") != "" {
		first := Prefix + "/tenants"
		if state != "" {
			first += "?state=" + url.QueryEscape(state)
		}
		data.FirstPage = first
	}
	p.render(w, r, http.StatusOK, "tenants", view{Title: "Customers", SignedIn: true, CSRF: sess.CSRF, Notice: notice(q.Get("done")), Data: data})
}

// createForm is the new-customer form: the values as typed, the errors by
// field, and what the templates offer.
type createForm struct {
	Name, Template, Stage, Plan string
	Settings                    map[string]string
	Errors                      map[string]string // field -> message
	Templates                   []templateChoice
}

// templateChoice is one template as the form offers it.
type templateChoice struct {
	Name, Description string
	Plans             []string
	DefaultPlan       string
	Settings          []spec.SettingTemplate
}

func (p *Portal) templateChoices() []templateChoice {
	var out []templateChoice
	for _, name := range p.cfg.Templates.Names() {
		t := p.cfg.Templates[name]
		out = append(out, templateChoice{Name: name, Description: t.Description, Plans: t.PlanNames(), DefaultPlan: t.DefaultPlan, Settings: t.Settings})
	}
	return out
}

func (p *Portal) newTenantForm(w http.ResponseWriter, r *http.Request, sess session) {
	f := createForm{Template: "default", Stage: "prod", Templates: p.templateChoices()}
	if _, ok := p.cfg.Templates[f.Template]; !ok {
		f.Template = p.cfg.Templates.Names()[0]
	}
	p.render(w, r, http.StatusOK, "new", view{Title: "New customer", SignedIn: true, CSRF: sess.CSRF, Data: f})
}

// createTenant sends the form to the API. A refusal naming a field is shown
// next to that field, with what was typed kept.
func (p *Portal) createTenant(w http.ResponseWriter, r *http.Request, sess session) {
	tpl := r.PostFormValue("template")
	f := createForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Template: tpl,
		Stage: r.PostFormValue("stage"), Plan: r.PostFormValue("plan." + tpl), Templates: p.templateChoices(),
	}
	req := createRequest{Name: f.Name, Template: f.Template, Stage: f.Stage, Plan: f.Plan}
	// Each template's options have fields of their own (the form works
	// without script); those of the chosen template are sent, and a
	// setting only when typed: an empty one takes the template's default.
	if t, ok := p.cfg.Templates[tpl]; ok {
		for _, s := range t.Settings {
			if v := r.PostFormValue("setting." + tpl + "." + s.Name); v != "" {
				if req.Settings == nil {
					req.Settings = map[string]string{}
				}
				req.Settings[s.Name] = v
			}
		}
	}
	f.Settings = req.Settings
	err := p.api.createTenant(r.Context(), sess.Token, req)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
		f.Errors = map[string]string{formField(ae.Field): ae.Message}
		p.render(w, r, ae.Status, "new", view{Title: "New customer", SignedIn: true, CSRF: sess.CSRF, Data: f})
		return
	}
	if err != nil {
		p.failAPI(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"/tenants/"+url.PathEscape(f.Name)+"?done=created", http.StatusSeeOther)
}

// formField maps the API's field name to the form's: settings.X is the
// input setting.X; a field the form lacks shows at the top.
func formField(field string) string {
	switch {
	case field == "name", field == "template", field == "stage", field == "plan", strings.HasPrefix(field, "settings."):
		return strings.Replace(field, "settings.", "setting.", 1)
	default:
		return "form"
	}
}

// notice is the confirmation of what a redirect just did; only these
// fixed sentences can show, never text from the address bar.
func notice(done string) string {
	return map[string]string{
		"created":                "The customer is being provisioned. This page follows it live.",
		"decommission-requested": "The decommission is requested. Nothing is removed until it is confirmed.",
		"decommission-confirmed": "The decommission is confirmed. The data is backed up and verified before anything is removed.",
		"decommission-cancelled": "The decommission request is withdrawn.",
	}[done]
}
