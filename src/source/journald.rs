//! The journald source (being written): reads the systemd journal through a
//! `journalctl --follow --output=json` subprocess.
