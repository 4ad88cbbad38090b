"""Nginx hosts: collecting each host's effective config tree through Ansible, reading it with
crossplane, planning minimal text edits, and applying them through the playbooks in `playbooks/`."""
