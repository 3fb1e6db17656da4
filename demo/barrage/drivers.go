package barrage

// The database/sql drivers the two programs link: the embedded SQLite (modernc.org/sqlite, no cgo) and PostgreSQL
// (pgx's database/sql driver, registered as "pgx"; the driver name "postgres" selects it too, as lib/pq's users
// write it). Another database needs only its driver linked here: the SQL is portable.
import _ "github.com/jackc/pgx/v5/stdlib"

// linkedDrivers names the drivers in errors.
const linkedDrivers = "sqlite, pgx (postgres)"

// driverName maps a configured driver to the registered one.
func driverName(d string) string {
	if d == "postgres" || d == "postgresql" {
		return "pgx"
	}
	return d
}
