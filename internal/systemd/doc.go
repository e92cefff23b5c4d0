// Package systemd installs, reads back and removes a scheduled job on a
// host: a oneshot service, the timer that starts it and a root-only
// environment file for its secrets, all through a remote.Runner. It knows
// nothing about Terraform.
//
// For a Unit named NAME the files are
//
//	/etc/systemd/system/NAME.service  mode 0644  Type=oneshot, one ExecStart= per command
//	/etc/systemd/system/NAME.timer    mode 0644  OnCalendar= lines, Persistent=true
//	/etc/homelab/NAME.env             mode 0600  KEY="value" lines, read by EnvironmentFile=
//
// Secrets only ever go to the environment file: they never appear in a
// unit file or on a command line (files travel on standard input).
//
// Render writes arguments with systemd's own quoting rules (see
// systemd.service(5), "Command lines", and systemd.exec(5),
// EnvironmentFile=), so every ExecStart word reaches the program byte for
// byte: words are double-quoted with C escapes, "%" is doubled against
// specifier expansion and "$" against environment variable expansion.
//
// Manager.Read reports what systemctl show says about the units. Its
// --timestamp=unix option (systemd 248 and later; Debian 12 has 252) only
// applies to the *Timestamp properties: the timer's LastTriggerUSec and
// NextElapseUSecRealtime stay in the "Sat 2026-11-21 12:28:36 UTC" form,
// so systemctl runs with TZ=UTC and both forms are parsed. On systemd
// before 248 show runs without the option and every time is in that form.
// A unit none of whose three files is on the host is not installed: Read's
// error then matches ErrNotFound under errors.Is. Nothing else does: an
// unreachable host, a refused sudo or systemctl failing are other errors.
package systemd
