package tenant

import (
	"encoding/json"
	"strings"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// captureMemo records the summary of every UpsertMemo the workflow makes.
func (s *provisionSuite) captureMemo() *[]Summary {
	var seen []Summary
	s.env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
		s.mu.Lock()
		defer s.mu.Unlock()
		memo := args.Get(0).(map[string]any)
		sum, ok := memo[MemoSummary].(Summary)
		s.Require().True(ok, "memo %v has no %s summary", memo, MemoSummary)
		seen = append(seen, sum)
	}).Return(nil)
	return &seen
}

func (s *provisionSuite) TestMemoRecordsTheStateSummary() {
	s.mockRuntime(nil, nil)
	seen := s.captureMemo()
	var queried Tenant
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) { queried = st })

	s.Require().NotEmpty(*seen)
	s.Equal(StateProvisioning, (*seen)[0].State)
	last := (*seen)[len(*seen)-1]
	s.Equal(Summarize(queried), last)
	s.Equal(StateActive, last.State)
	s.Equal("acme", last.Name)
	s.Equal("tenantflow/demo-app:dev", last.Image)
	s.Equal("http://127.0.0.1:40000", last.URL)
	s.False(last.UpdatedAt.IsZero())

	// Small, and without the generated secrets.
	p, err := converter.GetDefaultDataConverter().ToPayload(last)
	s.Require().NoError(err)
	s.Less(len(p.Data), 2048)
	raw, _ := json.Marshal(last)
	s.NotContains(string(raw), "password")
}

func (s *provisionSuite) TestMemoIsLeftOutForRunsBeforeTheChange() {
	s.mockRuntime(nil, nil)
	seen := s.captureMemo()
	s.env.OnGetVersion(versionStateMemo, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) { s.Equal(StateActive, st.State) })
	s.Empty(*seen)
}

func (s *provisionSuite) TestSummaryClipsFreeTextAndNamesTheHost() {
	long := strings.Repeat("é", 2000)
	sum := Summarize(Tenant{
		Name: "acme", State: StateDegraded, Error: long,
		Placement: &hosts.Placement{Host: "h1", Address: "tcp://h1:2376"},
		Degraded:  &Degraded{Host: "h1", Reason: long},
	})
	s.Equal("h1", sum.Host)
	s.LessOrEqual(len(sum.Error), summaryTextMax)
	s.LessOrEqual(len(sum.Degraded), summaryTextMax)
	s.True(strings.HasSuffix(sum.Error, "…"))
	raw, err := json.Marshal(sum)
	s.Require().NoError(err)
	s.Less(len(raw), 2048)
	s.NotContains(string(raw), "tcp://")
}
