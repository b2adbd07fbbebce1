package wiring

import (
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/drift"
	"github.com/tenantflow/tenantflow/activities/fleet"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/supervision"
)

// recorder is a worker.Registry that keeps the activity names a
// registration makes, as the SDK names them: a struct's exported methods.
type recorder struct {
	worker.Registry
	activities []string
	workflows  []string
}

func (r *recorder) RegisterWorkflowWithOptions(w any, o workflow.RegisterOptions) {
	r.workflows = append(r.workflows, o.Name)
}

func (r *recorder) RegisterActivity(a any) {
	t := reflect.TypeOf(a)
	for i := range t.NumMethod() {
		r.activities = append(r.activities, t.Method(i).Name)
	}
}

func (r *recorder) RegisterActivityWithOptions(a any, _ activity.RegisterOptions) {
	r.RegisterActivity(a)
}

// Every activities struct is registered whole, so every exported method of
// one is an activity: the set must be exactly the activity names the
// workflows call and the committed histories hold, with no helper
// (Check, Host, Lookup, …) among them and none registered twice.
func TestRegisterTakesEveryActivityAndNothingElse(t *testing.T) {
	var r recorder
	Register(&r, Deps{
		Proxy: &proxy.Activities{}, DNS: &dns.Activities{}, LDAP: &ldap.Activities{}, CMDB: &cmdb.Activities{},
		Supervision: &supervision.Activities{}, GitLab: &gitlab.Activities{}, Build: &build.Activities{},
		Fleet: &fleet.Activities{}, Drift: &drift.Activities{}, Backup: &backup.Activities{},
	})
	require.ElementsMatch(t, []string{"Tenant", "BuildImage", "Release", "Hosts", "DrainHost", "EvacuateHost", "HostWatch", "Reconcile"}, r.workflows)
	want := []string{
		// runtimes
		"Admit", "AwaitAdmission", "CreateNetwork", "CreateVolumes", "CreateService", "StartService", "WaitHealthy", "EnsureImage", "RetireService",
		"StopServices", "StartServices", "RemoveServices", "RemoveVolumes", "RemoveNetwork", "ResizeService",
		// the drift reconcile: each engine's scan, the tenants, routes and records
		"ScanEngine", "RemoveOrphan", "ListTenantStates", "ListRoutes", "InspectNames", "RequestRepair",
		"PlanIntegrations",
		"EnsureRoute", "RemoveRoute",
		"EnsureDNSRecord", "RemoveDNSRecord",
		"EnsureDirectory", "RemoveDirectory", "DisableAccounts", "EnableAccounts",
		"RegisterInCMDB", "RemoveFromCMDB", "MarkObsoleteInCMDB",
		"StartSupervision", "StopSupervision",
		"SetCommitStatus",
		"FindImage", "BuildAndPushImage", "RemoveImage",
		"ListTenants", "UpdateTenant", "CancelRelease",
		"BackupVolumes", "VerifyBackup", "RestoreVolumes", "RemoveBackup", "DumpServices", "LoadDumps",
		// scheduled backups (restic)
		"TakeBackup", "CopyOffsite", "ApplyRetention", "DrillBackup", "EraseBackups", "ListBackups", "RestoreBackup",
		// canary analysis
		"CompareCanaries",
		// custom domains
		"VerifyDomain", "CheckHTTPS", "CheckDomainFree",
	}
	require.ElementsMatch(t, want, r.activities)
	sorted := slices.Sorted(slices.Values(r.activities))
	require.Equal(t, sorted, slices.Compact(slices.Clone(sorted)), "an activity name registered twice")

	// A disabled integration registers nothing.
	var bare recorder
	Register(&bare, Deps{})
	require.NotContains(t, bare.activities, "EnsureRoute")
	require.Contains(t, bare.activities, "CreateNetwork")
}

// A fleet host's worker takes what reaches its engine and volumes: the
// runtime, the backups, and the copy of volumes to another host.
func TestRegisterHostTakesTheHostsActivities(t *testing.T) {
	var r recorder
	RegisterHost(&r, Deps{Backup: &backup.Activities{}})
	require.Subset(t, r.activities, []string{"CreateService", "StartService", "StopServices", "ScanEngine", "RemoveOrphan", "TakeBackup", "RestoreBackup", "PushVolumes", "BackupVolumes"})
	require.NotContains(t, r.activities, "EnsureRoute", "the proxy is not a host's")
	require.Empty(t, r.workflows, "workflows run on the shared queue")
	sorted := slices.Sorted(slices.Values(r.activities))
	require.Equal(t, sorted, slices.Compact(slices.Clone(sorted)), "an activity name registered twice")
}
