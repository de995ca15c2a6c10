package testutil

import "testing"

// TestStartPrimaryWithReplica pins what the replica tests build on: a
// write on the primary reaches the standby, a paused standby does not see
// the next one until it resumes, and the standby refuses writes.
func TestStartPrimaryWithReplica(t *testing.T) {
	primary, replica := StartPrimaryWithReplica(t)
	primary.Exec(t, "CREATE TABLE marks (n int)")
	primary.Exec(t, "INSERT INTO marks VALUES (1)")
	replica.WaitCaughtUp(t)
	count := func() int {
		db := replica.open(t)
		defer db.Close()
		var n int
		if err := db.Raw("SELECT count(*) FROM marks").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 1 {
		t.Fatalf("replica sees %d rows, want 1", n)
	}
	replica.PauseReplay(t)
	primary.Exec(t, "INSERT INTO marks VALUES (2)")
	if n := count(); n != 1 {
		t.Fatalf("paused replica sees %d rows, want still 1", n)
	}
	replica.ResumeReplay(t)
	replica.WaitCaughtUp(t)
	if n := count(); n != 2 {
		t.Fatalf("resumed replica sees %d rows, want 2", n)
	}
	db := replica.open(t)
	defer db.Close()
	if err := db.Exec("INSERT INTO marks VALUES (3)").Error; err == nil {
		t.Fatal("the standby accepted a write")
	}
}
