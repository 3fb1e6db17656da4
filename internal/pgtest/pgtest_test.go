package pgtest

import (
	"context"
	"database/sql"
	"testing"
)

// TestStart: the server accepts SQL over TCP on loopback as the superuser tide.
func TestStart(t *testing.T) {
	srv := Start(t)
	db, err := sql.Open("pgx", srv.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var who string
	if err := db.QueryRowContext(context.Background(), "SELECT current_user").Scan(&who); err != nil || who != "tide" {
		t.Fatalf("current_user %q, %v", who, err)
	}
	t.Logf("%s at %s", srv.Version, srv.DSN)
}
