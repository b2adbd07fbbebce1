// Package cmdb records each tenant in the iTop CMDB through its REST/JSON
// API: an Organization (code = tenant name) owning an ApplicationSolution
// ("tenantflow-<tenant>"), so that ops find who runs what, with which
// criticality, in the tool they already use for impact analysis.
//
// iTop does not enforce unique names, so every write is preceded by a
// lookup on a key Tenantflow controls: Organization.code, and the
// ApplicationSolution's name within that organization. Retries and
// re-registrations therefore update what exists instead of duplicating it.
//
// # Ownership
//
// The ApplicationSolution is the provisioning run's: its description names
// the run ("Tenantflow owner: <run>"), written in the same core/create, and
// the application is looked up by name AND owner. RegisterInCMDB never
// adopts another run's application: when the tenant's name held an earlier
// customer whose entry is obsolete (inactive, kept for its history), a new
// provisioning creates its own entry beside it; when another run's entry is
// still active (a live tenant whose workflow was terminated), it is refused
// (ResourceNotOurs). RemoveFromCMDB and MarkObsoleteInCMDB touch only the
// run's own applications, so compensation never deletes a predecessor's
// history.
//
// The Organization stands for the tenant name, not for a run: iTop's
// Organization has no free-text field to stamp, and the entries of every
// customer that held the name belong together for impact analysis. It is
// shared: made by the first registration, reactivated by a later one, and
// deleted only when nothing depends on it any more (a predecessor's
// obsolete application does); a removal that has to keep it puts it back
// to obsolete when every application left in it is obsolete, so a failed
// provisioning leaves the predecessor's records exactly as they were.
//
// Entries made before runs were stamped have no owner line. Only calls with
// Adopt (the release, decommission and restore of an existing tenant, never
// its provisioning) treat such an application of the tenant as theirs (and
// stamp it). An empty Owner keeps the behaviour from before runs were
// stamped (every application of the tenant's name).
package cmdb

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// iTop classes and the values of the standard datamodel Tenantflow sets.
// Organization.status and ApplicationSolution.status only take "active" and
// "inactive"; "inactive" is what makes iTop flag them obsolete.
const (
	ClassOrganization = "Organization"
	ClassApplication  = "ApplicationSolution"

	StatusActive   = "active"
	StatusInactive = "inactive"

	CriticityHigh = "high"
	CriticityLow  = "low"
)

// StageProd is the stage whose applications are business-critical.
const StageProd = "prod"

const (
	orgFields = "id,name,code,status"
	appFields = "id,name,org_id,status,business_criticity,move2production,description"
)

// ApplicationName is the ApplicationSolution name of a tenant; together
// with the organization it identifies what Tenantflow created.
func ApplicationName(tenant string) string { return "tenantflow-" + tenant }

// CMDBInput describes the tenant as the CMDB should show it.
type CMDBInput struct {
	Tenant   string        `json:"tenant"`
	Stage    string        `json:"stage"`
	Template string        `json:"template"`
	URL      string        `json:"url"`
	Services []CMDBService `json:"services"`
	// Owner is the provisioning run the application belongs to (see the
	// package documentation); empty: any application of the tenant.
	Owner string `json:"owner,omitempty"`
	// Adopt lets this call take over the tenant's application from before
	// runs were stamped: set by the release, decommission and restore of
	// an existing tenant, never by provisioning.
	Adopt bool `json:"adopt,omitempty"`
}

// CMDBService is one running service of the tenant, listed in the
// application's description.
type CMDBService struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	ContainerID string `json:"containerID"`
}

// CMDBRecord is what RegisterInCMDB created or found, by iTop id.
type CMDBRecord struct {
	OrganizationID        string `json:"organizationID"`
	ApplicationSolutionID string `json:"applicationSolutionID"`
	// SoftwareIDs maps a service to its software CI. It is empty: iTop's
	// OtherSoftware needs a mandatory system_id (a Server, VirtualMachine or
	// PC), which a container platform does not give; services are listed in
	// the application's description instead.
	SoftwareIDs map[string]string `json:"softwareIDs"`
}

// CMDBRef names the tenant whose CMDB entries an activity works on, and
// the run that owns them (see CMDBInput).
type CMDBRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	Adopt  bool   `json:"adopt,omitempty"`
}

// Activities registers tenants in iTop. Every exported method is an
// activity, so the worker registers the struct whole
// (RegisterActivity(cmdb.NewActivities(c))).
type Activities struct {
	client *Client
	log    *slog.Logger
	// now dates move2production; tests pin it.
	now func() time.Time
}

// NewActivities are the CMDB activities on c's iTop.
func NewActivities(c *Client) *Activities {
	return &Activities{client: c, log: c.log, now: time.Now}
}

// New is NewClient and NewActivities in one, for a caller that needs no
// Check.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	c, err := NewClient(cfg, log)
	if err != nil {
		return nil, err
	}
	return NewActivities(c), nil
}

var tenantName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func validTenant(tenant string) error {
	if !tenantName.MatchString(tenant) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("tenant name %q is not a DNS label", tenant), ErrInvalidInput, nil)
	}
	return nil
}

// RegisterInCMDB makes the tenant's Organization and ApplicationSolution
// exist with the given description, creating what is missing and updating
// what differs, so it is safe to retry and to call again on every change.
func (a *Activities) RegisterInCMDB(ctx context.Context, in CMDBInput) (CMDBRecord, error) {
	if err := validTenant(in.Tenant); err != nil {
		return CMDBRecord{}, err
	}
	log := a.log.With("tenant", in.Tenant)
	comment := "Tenantflow: register tenant " + in.Tenant
	org, err := a.ensureOrganization(ctx, log, in.Tenant, comment)
	if err != nil {
		return CMDBRecord{}, activityError(fmt.Errorf("register tenant %s in CMDB: %w", in.Tenant, err))
	}
	app, err := a.ensureApplication(ctx, log, in, org.ID, comment)
	if err != nil {
		return CMDBRecord{}, activityError(fmt.Errorf("register tenant %s in CMDB: %w", in.Tenant, err))
	}
	return CMDBRecord{OrganizationID: org.ID, ApplicationSolutionID: app.ID, SoftwareIDs: map[string]string{}}, nil
}

// RemoveFromCMDB undoes RegisterInCMDB when provisioning fails: the
// application first (iTop refuses to delete an organization something
// still points to), then the organization. An organization other objects
// still reference (contacts, contracts, CIs added by people) is left in
// place with a warning: those are not Tenantflow's to delete. Nothing
// registered is success.
func (a *Activities) RemoveFromCMDB(ctx context.Context, in CMDBRef) error {
	if err := validTenant(in.Tenant); err != nil {
		return err
	}
	log := a.log.With("tenant", in.Tenant, "owner", in.Owner)
	comment := "Tenantflow: remove tenant " + in.Tenant
	if err := a.remove(ctx, log, in, comment); err != nil {
		return activityError(fmt.Errorf("remove tenant %s from CMDB: %w", in.Tenant, err))
	}
	return nil
}

func (a *Activities) remove(ctx context.Context, log *slog.Logger, ref CMDBRef, comment string) error {
	orgs, err := a.findOrganizations(ctx, ref.Tenant)
	if err != nil {
		return err
	}
	if len(orgs) == 0 {
		log.Info("nothing registered in the CMDB")
		return nil
	}
	for _, org := range orgs {
		apps, err := a.findApplications(ctx, ref.Tenant, org.ID)
		if err != nil {
			return err
		}
		ours, others := partition(apps, ref.Owner, ref.Adopt)
		for _, app := range ours {
			if err := a.client.delete(ctx, ClassApplication, app.ID, comment); err != nil {
				return fmt.Errorf("delete %s::%s: %w", ClassApplication, app.ID, err)
			}
			log.Info("deleted CMDB application", "application", app.ID, "organization", org.ID)
		}
		leftAlone(log, others)
		blockers, err := a.client.deleteBlockers(ctx, ClassOrganization, org.ID, comment)
		if err != nil {
			return fmt.Errorf("plan deletion of %s::%s: %w", ClassOrganization, org.ID, err)
		}
		if len(blockers) > 0 {
			log.Warn("CMDB organization kept: other objects depend on it",
				"organization", org.ID, "dependants", blockers)
			if err := a.settleOrganization(ctx, log, org, others, len(blockers), comment); err != nil {
				return err
			}
			continue
		}
		if err := a.client.delete(ctx, ClassOrganization, org.ID, comment); err != nil {
			return fmt.Errorf("delete %s::%s: %w", ClassOrganization, org.ID, err)
		}
		log.Info("deleted CMDB organization", "organization", org.ID)
	}
	return nil
}

// settleOrganization puts a kept organization back to obsolete when all
// that still depends on it is obsolete applications of the tenant's name
// (a predecessor's history): registering reactivated it, and the removal
// of the run's own entry must leave it as it was.
func (a *Activities) settleOrganization(ctx context.Context, log *slog.Logger, org object, left []object, dependants int, comment string) error {
	if org.Fields["status"] == StatusInactive || dependants != len(left) {
		return nil
	}
	for _, app := range left {
		if app.Fields["status"] != StatusInactive {
			return nil
		}
	}
	if _, err := a.client.update(ctx, ClassOrganization, org.ID, map[string]any{"status": StatusInactive}, "id", comment); err != nil {
		return fmt.Errorf("update %s::%s: %w", ClassOrganization, org.ID, err)
	}
	log.Info("CMDB organization back to obsolete: only obsolete entries are left in it", "organization", org.ID)
	return nil
}

// ownerLine is the line of an application's description that names the
// provisioning run that made it.
const ownerLine = "Tenantflow owner: "

// applicationOwner reads the run an application's description names.
func applicationOwner(app object) (owner string, stamped bool) {
	for _, line := range strings.Split(app.Fields["description"], "\n") {
		if o, ok := strings.CutPrefix(strings.TrimSpace(line), ownerLine); ok {
			return strings.TrimSpace(o), true
		}
	}
	return "", false
}

// partition splits the tenant's applications into the call's own (this
// run's; with adopt also those from before runs were stamped; all of them
// for an empty owner) and the others', each oldest first.
func partition(apps []object, owner string, adopt bool) (ours, others []object) {
	for _, app := range apps {
		got, stamped := applicationOwner(app)
		if owner == "" || (stamped && got == owner) || (!stamped && adopt) {
			ours = append(ours, app)
		} else {
			others = append(others, app)
		}
	}
	return ours, others
}

// leftAlone logs the applications of other runs a call does not touch.
func leftAlone(log *slog.Logger, others []object) {
	for _, app := range others {
		owner, stamped := applicationOwner(app)
		if !stamped {
			owner = "(not stamped)"
		}
		log.Warn("CMDB application of another provisioning left alone", "application", app.ID, "madeBy", owner, "status", app.Fields["status"])
	}
}

// MarkObsoleteInCMDB records a decommissioned tenant: its application and
// organization become "inactive", which iTop shows as obsolete. Nothing is
// deleted, so the history (tickets, changes) stays attached. Nothing
// registered is success.
func (a *Activities) MarkObsoleteInCMDB(ctx context.Context, in CMDBRef) error {
	if err := validTenant(in.Tenant); err != nil {
		return err
	}
	log := a.log.With("tenant", in.Tenant, "owner", in.Owner)
	comment := "Tenantflow: decommission tenant " + in.Tenant
	if err := a.markObsolete(ctx, log, in, comment); err != nil {
		return activityError(fmt.Errorf("mark tenant %s obsolete in CMDB: %w", in.Tenant, err))
	}
	return nil
}

func (a *Activities) markObsolete(ctx context.Context, log *slog.Logger, ref CMDBRef, comment string) error {
	orgs, err := a.findOrganizations(ctx, ref.Tenant)
	if err != nil {
		return err
	}
	if len(orgs) == 0 {
		log.Info("nothing registered in the CMDB to mark obsolete")
		return nil
	}
	inactive := map[string]any{"status": StatusInactive}
	for _, org := range orgs {
		apps, err := a.findApplications(ctx, ref.Tenant, org.ID)
		if err != nil {
			return err
		}
		ours, others := partition(apps, ref.Owner, ref.Adopt)
		for _, app := range ours {
			if app.Fields["status"] == StatusInactive {
				continue
			}
			if _, err := a.client.update(ctx, ClassApplication, app.ID, inactive, "id", comment); err != nil {
				return fmt.Errorf("update %s::%s: %w", ClassApplication, app.ID, err)
			}
			log.Info("marked CMDB application obsolete", "application", app.ID)
		}
		leftAlone(log, others)
		if org.Fields["status"] == StatusInactive || slices.ContainsFunc(others, func(o object) bool { return o.Fields["status"] != StatusInactive }) {
			continue // another run's live entry still needs it active
		}
		if _, err := a.client.update(ctx, ClassOrganization, org.ID, inactive, "id", comment); err != nil {
			return fmt.Errorf("update %s::%s: %w", ClassOrganization, org.ID, err)
		}
		log.Info("marked CMDB organization obsolete", "organization", org.ID)
	}
	return nil
}

// OrganizationCode is the code of the Organization Tenantflow makes for a
// tenant. Its own prefix keeps Tenantflow from adopting, renaming or
// deleting an organization someone else coded with the tenant's name.
func OrganizationCode(tenant string) string { return "tenantflow-" + tenant }

// findOrganizations returns the organizations whose code is exactly the
// tenant's organization code, oldest first. The OQL match is
// case-insensitive (MySQL collation); an organization coded "ACME" by
// someone else is not ours.
func (a *Activities) findOrganizations(ctx context.Context, tenant string) ([]object, error) {
	code := OrganizationCode(tenant)
	q := fmt.Sprintf("SELECT %s WHERE code = %s", ClassOrganization, oqlQuote(code))
	objs, err := a.client.get(ctx, ClassOrganization, q, orgFields)
	if err != nil {
		return nil, fmt.Errorf("look up %s %q: %w", ClassOrganization, tenant, err)
	}
	return slices.DeleteFunc(objs, func(o object) bool { return o.Fields["code"] != code }), nil
}

// findApplications returns the tenant's ApplicationSolutions in the
// organization, oldest first.
func (a *Activities) findApplications(ctx context.Context, tenant, orgID string) ([]object, error) {
	name := ApplicationName(tenant)
	org := oqlQuote(orgID)
	if _, err := strconv.ParseInt(orgID, 10, 64); err == nil {
		org = orgID
	}
	q := fmt.Sprintf("SELECT %s WHERE name = %s AND org_id = %s", ClassApplication, oqlQuote(name), org)
	objs, err := a.client.get(ctx, ClassApplication, q, appFields)
	if err != nil {
		return nil, fmt.Errorf("look up %s %q: %w", ClassApplication, name, err)
	}
	return slices.DeleteFunc(objs, func(o object) bool { return o.Fields["name"] != name || o.Fields["org_id"] != orgID }), nil
}

func (a *Activities) ensureOrganization(ctx context.Context, log *slog.Logger, tenant, comment string) (object, error) {
	want := map[string]string{"name": tenant, "status": StatusActive}
	orgs, err := a.findOrganizations(ctx, tenant)
	if err != nil {
		return object{}, err
	}
	if len(orgs) == 0 {
		org, err := a.client.create(ctx, ClassOrganization, map[string]any{"name": tenant, "code": OrganizationCode(tenant), "status": StatusActive}, orgFields, comment)
		if err != nil {
			return object{}, fmt.Errorf("create %s %q: %w", ClassOrganization, tenant, err)
		}
		log.Info("created CMDB organization", "organization", org.ID)
		return org, nil
	}
	org := orgs[0]
	if len(orgs) > 1 {
		log.Warn("several CMDB organizations have the tenant's code; using the oldest", "organization", org.ID, "count", len(orgs))
	}
	return a.converge(ctx, log, org, want, comment)
}

func (a *Activities) ensureApplication(ctx context.Context, log *slog.Logger, in CMDBInput, orgID, comment string) (object, error) {
	want := map[string]string{
		"status":             StatusActive,
		"business_criticity": CriticityLow,
		"description":        describe(in),
	}
	if in.Stage == StageProd {
		want["business_criticity"] = CriticityHigh
	}
	apps, err := a.findApplications(ctx, in.Tenant, orgID)
	if err != nil {
		return object{}, err
	}
	ours, others := partition(apps, in.Owner, false)
	if len(ours) == 0 && in.Adopt {
		// The tenant's entry from before runs were stamped: stamped below
		// by converging its description.
		ours, others = partition(apps, in.Owner, true)
	}
	if len(ours) == 0 {
		if err := refuseLive(in, others); err != nil {
			return object{}, err
		}
		values := map[string]any{"name": ApplicationName(in.Tenant), "org_id": idKey(orgID), "move2production": a.now().Format(time.DateOnly)}
		for k, v := range want {
			values[k] = v
		}
		app, err := a.client.create(ctx, ClassApplication, values, appFields, comment)
		if err != nil {
			return object{}, fmt.Errorf("create %s %q: %w", ClassApplication, ApplicationName(in.Tenant), err)
		}
		log.Info("created CMDB application", "application", app.ID, "organization", orgID, "history", len(others))
		return app, nil
	}
	// Extra copies can only come from an attempt that timed out after
	// creating one: they carry our name and our run in our organization,
	// so they are ours to remove.
	if _, stamped := applicationOwner(ours[0]); stamped || in.Owner == "" {
		for _, dup := range ours[1:] {
			if err := a.client.delete(ctx, ClassApplication, dup.ID, comment); err != nil {
				return object{}, fmt.Errorf("delete duplicate %s::%s: %w", ClassApplication, dup.ID, err)
			}
			log.Warn("deleted duplicate CMDB application", "application", dup.ID, "kept", ours[0].ID)
		}
	} else {
		log.Info("adopting the tenant's CMDB application from before runs were stamped", "application", ours[0].ID)
	}
	return a.converge(ctx, log, ours[0], want, comment)
}

// refuseLive refuses to register a tenant beside an active application of
// its name that another run made (or one from before runs were stamped):
// that tenant is live. Obsolete ones are an earlier customer's history.
func refuseLive(in CMDBInput, others []object) error {
	for _, app := range others {
		if app.Fields["status"] == StatusInactive {
			continue
		}
		owner, stamped := applicationOwner(app)
		if !stamped {
			owner = "none: made before runs were stamped"
		}
		msg := fmt.Sprintf("CMDB %s::%s (%s) is active and was not made by this provisioning of %s (owner %q, made by %q): is the tenant already deployed?",
			ClassApplication, app.ID, ApplicationName(in.Tenant), in.Tenant, in.Owner, owner)
		return temporal.NewNonRetryableApplicationError(msg, ErrResourceNotOurs, nil)
	}
	return nil
}

// converge updates the attributes of obj that differ from want, if any.
func (a *Activities) converge(ctx context.Context, log *slog.Logger, obj object, want map[string]string, comment string) (object, error) {
	changes := map[string]any{}
	var names []string
	for k, v := range want {
		if normalize(obj.Fields[k]) != normalize(v) {
			changes[k] = v
			names = append(names, k)
		}
	}
	if len(changes) == 0 {
		return obj, nil
	}
	slices.Sort(names)
	fields := orgFields
	if obj.Class == ClassApplication {
		fields = appFields
	}
	updated, err := a.client.update(ctx, obj.Class, obj.ID, changes, fields, comment)
	if err != nil {
		return object{}, fmt.Errorf("update %s::%s: %w", obj.Class, obj.ID, err)
	}
	log.Info("updated CMDB object", "class", obj.Class, "id", obj.ID, "attributes", names)
	return updated, nil
}

// normalize ignores what iTop may change in stored text (line endings,
// surrounding blanks) so an unchanged description is not rewritten.
func normalize(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// describe is the application's description: what ops need to find the
// tenant without opening Tenantflow.
func describe(in CMDBInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tenant %s, managed by Tenantflow (changes made here are overwritten).\n", in.Tenant)
	if in.Owner != "" {
		fmt.Fprintf(&b, "%s%s\n", ownerLine, in.Owner)
	}
	fmt.Fprintf(&b, "Stage: %s\nTemplate: %s\nURL: %s\n", in.Stage, in.Template, in.URL)
	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(x, y CMDBService) int { return strings.Compare(x.Name, y.Name) })
	if len(svcs) > 0 {
		b.WriteString("Services:\n")
	}
	for _, s := range svcs {
		fmt.Fprintf(&b, "- %s: %s", s.Name, s.Image)
		if s.ContainerID != "" {
			fmt.Fprintf(&b, " (container %.12s)", s.ContainerID)
		}
		b.WriteString("\n")
	}
	return b.String()
}
