"""Shared mode: several daemons, one watch_dir, the shared filesystem as the only broker.

`instance` is this daemon's part (claims, takeovers, what it sees of its peers); `lease`
the heartbeats by which instances know who is alive; `startup` the checks that refuse a
start beside the wrong kind of peer; `reservations` the names held so two inputs never
get one name; `attempts` the attempt counts that outlive an instance; `foldercount` what
all instances together hold in each folder.
"""
