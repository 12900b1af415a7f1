# Write-ahead logging (stored in the database file): readers never block the writer and the
# writer never blocks readers. Without it, a reader thread that holds SQLite's shared lock
# across a GVL switch blocks another thread's commit, whose busy wait in sqlite3-ruby 1.4 keeps
# the GVL, so the reader cannot finish: the commit fails after the 5 s busy timeout
# ("SQLite3::BusyException: database is locked"), as seen under wrk with the rollback journal.
class UseWalJournal < ActiveRecord::Migration[6.1]
  disable_ddl_transaction!

  def up
    execute "PRAGMA journal_mode = WAL"
  end

  def down
    execute "PRAGMA journal_mode = DELETE"
  end
end
