# Write-ahead logging (stored in the database file): readers never block the writer and the
# writer never blocks readers. With the rollback journal, wrk saw requests fail after 5 s with
# "SQLite3::BusyException: database is locked"; the likely cause is a reader thread holding
# SQLite's shared lock across a GVL switch while another thread's commit busy-waits inside
# sqlite3-ruby 1.4 without releasing the GVL, so the reader cannot finish. See README.md.
class UseWalJournal < ActiveRecord::Migration[6.1]
  disable_ddl_transaction!

  def up
    execute "PRAGMA journal_mode = WAL"
  end

  def down
    execute "PRAGMA journal_mode = DELETE"
  end
end
