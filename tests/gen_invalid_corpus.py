#!/usr/bin/env python3
"""Regenerates tests/invalid/: each case marks the offending token with the marker character,
which becomes a `# position: L:C` header, so expected positions come from the case, not from infra."""
import os, textwrap
BASE = """\
name: corpus
hosts:
  lb1: { address: 10.9.0.11 }
  lb2: { address: 10.9.0.12 }
  web1: { address: 10.9.0.21 }
  app1: { address: 10.9.0.31 }
  db1: { address: 10.9.0.41 }
  db2: { address: 10.9.0.42 }
load_balancer:
  hosts: [lb1, lb2]
  vip: 10.9.0.10/24
web:
  hosts: [web1]
app:
  hosts: [app1]
  name: demo
  command: /usr/bin/python3 -m http.server 8000
database:
  primary: db1
  replicas: [db2]
  name: demo
  app_user: { name: demo, password: "${env:CORPUS_PASSWORD}" }
  replication_user: { name: repl, password: "${env:CORPUS_PASSWORD}" }
"""
M = "‸"
cases = []
def case(name, text, *messages):
    cases.append((name, text, messages))
def sub(old, new, base=BASE):
    assert old in base, old
    return base.replace(old, new, 1)

case("yaml_syntax_error", sub("  vip: 10.9.0.10/24\n", "  vip: [10.9.0.10/24\nweb‸:\n"), "")
case("unknown_top_level_key", sub("web:\n", M+"webb:\n  hosts: [web1]\nweb:\n"), "unknown key `webb` at the top level", "did you mean `web`?")
case("unknown_host_key", sub("  web1: { address: 10.9.0.21 }", "  web1: { "+M+"adress: 10.9.0.21 }"), "unknown key `adress` in `hosts.web1`", "did you mean `address`?")
case("several_unknown_keys", sub("  name: demo\n  command", "  "+M+"nmae: demo\n  command").replace("  hosts: [web1]\n", "  hosts: [web1]\n  "+M+"roots: /x\n",1), "unknown key `nmae` in `app`", "unknown key `roots` in `web`")
case("unknown_ssh_key", sub("name: corpus\n", "name: corpus\ndefaults:\n  ssh:\n    "+M+"usr: root\n"), "unknown key `usr` in `defaults.ssh`", "did you mean `user`?")
case("duplicate_host_name", sub("  lb2: { address: 10.9.0.12 }\n", "  lb2: { address: 10.9.0.12 }\n  "+M+"lb2: { address: 10.9.0.13 }\n"), "duplicate")
case("missing_name", sub("name: corpus\n", "").replace("hosts:", M+"hosts:", 1), "missing key `name` at the top level", "`name`: Name of the topology")
case("missing_keys_everywhere", sub("  name: demo\n  command: /usr/bin/python3 -m http.server 8000\n", "  port: 8000\n").replace("app:\n  hosts", "app:\n  "+M+"hosts").replace("  app_user: { name: demo,", "  app_user: { "+M+"password_x: 1, name: demo,"), "missing key `name` in `app`", "missing key `command` in `app`", "unknown key `password_x` in `database.app_user`")
case("wrong_type_port", sub("  name: demo\n  command", "  name: demo\n  port: "+M+"eighty\n  command"), "")
case("port_out_of_range", sub("  name: demo\n  command", "  name: demo\n  port: "+M+"70000\n  command"), "")
case("not_a_mapping", M+"- just\n- a list\n", "")
case("empty_hosts", sub("hosts:\n  lb1: { address: 10.9.0.11 }\n  lb2: { address: 10.9.0.12 }\n  web1: { address: 10.9.0.21 }\n  app1: { address: 10.9.0.31 }\n  db1: { address: 10.9.0.41 }\n  db2: { address: 10.9.0.42 }\n", "hosts: "+M+"{}\n"), "`hosts` is empty")
case("undeclared_host_in_web", sub("  hosts: [web1]", "  hosts: [web1, "+M+"web9]"), "`web` refers to undeclared host `web9`", "did you mean `web1`?")
case("undeclared_primary", sub("  primary: db1", "  primary: "+M+"db7"), "`database.primary` refers to undeclared host `db7`")
case("undeclared_lb", sub("  hosts: [lb1, lb2]", "  hosts: [lb1, "+M+"lbx]"), "`load_balancer` refers to undeclared host `lbx`")
case("duplicate_address", sub("  lb2: { address: 10.9.0.12 }", "  lb2: { address: "+M+"10.9.0.11 }"), "address `10.9.0.11` is used by `lb1` and `lb2`")
case("invalid_address", sub("  web1: { address: 10.9.0.21 }", "  web1: { address: "+M+"web1_example.com }"), "`web1_example.com` is not an IP address or a DNS name")
case("hostile_ssh_address", sub("  web1: { address: 10.9.0.21 }", "  web1: { address: 10.9.0.21, ssh_address: "+M+"\"-oProxyCommand=id\" }"), "`-oProxyCommand=id` is not an IP address or a DNS name")
case("ssh_address_shared", sub("  web1: { address: 10.9.0.21 }", "  web1: { address: 10.9.0.21, ssh_address: "+M+"10.9.0.31 }"), "`app1` and `web1` are both reached over SSH at 10.9.0.31 port 22", "a different `ssh_address` or port for every host")
case("lab_host_unknown", BASE + "lab:\n  hosts:\n    "+M+"db9: { release: trixie }\n", "`lab.hosts` names `db9`, which is not a host")
case("lab_release_unknown", BASE + "lab:\n  release: "+M+"buster\n", "buster")
case("invalid_host_name", sub("  db2: { address: 10.9.0.42 }", "  "+M+"DB_2: { address: 10.9.0.42 }").replace("replicas: [db2]", "replicas: [DB_2]"), "`DB_2` is not a valid host name")
case("hostile_host_name", sub("  db2: { address: 10.9.0.42 }", "  "+M+"\"db2;rm -rf /\": { address: 10.9.0.42 }").replace("replicas: [db2]", "replicas: [\"db2;rm -rf /\"]"), "is not a valid host name")
case("single_load_balancer_and_other_error", sub("  hosts: [lb1, lb2]", "  hosts: [lb1]").replace("  lb2: { address: 10.9.0.12 }", "  lb2: { address: "+M+"10.9.0.300 }"), "`10.9.0.300` is not an IP address", "warning: a single load balancer is a single point of failure")
case("vip_outside_subnet", sub("  vip: 10.9.0.10/24", "  vip: "+M+"10.8.0.10/24"), "the VIP `10.8.0.10/24` is not in the subnet of load balancer `lb1`")
case("vip_equals_host", sub("  vip: 10.9.0.10/24", "  vip: "+M+"10.9.0.21/24"), "the VIP `10.9.0.21` is also the address of host `web1`")
case("vip_without_prefix", sub("  vip: 10.9.0.10/24", "  vip: "+M+"10.9.0.10"), "`10.9.0.10` is not an address with a prefix length", "10.9.0.10/24")
case("vip_is_network_address", sub("  vip: 10.9.0.10/24", "  vip: "+M+"10.9.0.0/24"), "is the network or broadcast address")
case("replica_is_primary", sub("  replicas: [db2]", "  replicas: [db2, "+M+"db1]"), "`db1` is both the primary and a replica")
case("replicas_without_replication_user", sub("  replication_user: { name: repl, password: \"${env:CORPUS_PASSWORD}\" }\n", "").replace("  replicas: [db2]", "  replicas: "+M+"[db2]"), "replicas need a `replication_user`")
case("host_listed_twice", sub("  hosts: [web1]", "  hosts: [web1, "+M+"web1]"), "host `web1` is listed twice in `web`")
case("port_collision_lb_and_web", sub("  hosts: [web1]", "  hosts: "+M+"[lb1]"), "port 80 on host `lb1` is wanted by")
case("port_collision_app_and_db", sub("  name: demo\n  command", "  name: demo\n  port: "+M+"3306\n  command").replace("  hosts: [app1]", "  hosts: [db1]"), "port 3306 on host `db1` is wanted by `app.port` and `database.port`")
case("literal_secret", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"hunter2 }"), "`app_user.password` must be a secret reference", "secrets are never written in the topology")
case("unknown_secret_kind", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"\"${vault:db}\" }"), "must be a secret reference", "only `env:` and `file:` references are supported")
case("missing_env_secret", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"\"${env:CORPUS_UNSET_PASSWORD}\" }"), "environment variable `CORPUS_UNSET_PASSWORD` for `app_user.password` is not set")
case("missing_secret_file", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"\"${file:no-such-secret}\" }"), "cannot read secret file `tests/invalid/no-such-secret` for `app_user.password`")
case("unsafe_secret_value", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"\"${env:CORPUS_HOSTILE}\" }"), "has a space, which no config file `infra` writes can hold")
case("hostile_database_name", sub("  name: demo\n  app_user", "  name: "+M+"\"demo; DROP DATABASE x\"\n  app_user"), "is not a valid database name")
case("hostile_app_command", sub("  command: /usr/bin/python3 -m http.server 8000", "  command: "+M+"\"/bin/sh -c $(curl x)\""), "has characters that are not safe")
case("relative_app_command", sub("  command: /usr/bin/python3 -m http.server 8000", "  command: "+M+"python3 app.py"), "`python3` is not an absolute path")
case("relative_app_migrate", sub("  command: /usr/bin/python3 -m http.server 8000", "  command: /usr/bin/python3 -m http.server 8000\n  migrate: "+M+"migrate.py"), "`migrate.py` is not an absolute path")
case("unsafe_install_dir", sub("  name: demo\n  command", "  name: demo\n  install_dir: "+M+"/opt/../etc\n  command"), "`/opt/../etc` in `app.install_dir` is not a safe absolute path")
case("bad_package_name", sub("  name: demo\n  command", "  name: demo\n  packages: [python3, "+M+"\"curl; reboot\"]\n  command"), "`curl; reboot` is not a Debian package name")
case("bad_env_name", sub("  name: demo\n  command", "  name: demo\n  environment:\n    "+M+"\"BAD-NAME\": x\n  command"), "`BAD-NAME` is not a valid environment variable name")
case("reserved_env_name", sub("  name: demo\n  command", "  name: demo\n  environment:\n    "+M+"DB_HOST: x\n  command"), "`DB_HOST` is set by `infra`", "names starting with `DB_` are set by `infra` from the database tier")
case("unsafe_env_value", sub("  name: demo\n  command", "  name: demo\n  environment:\n    GREETING: "+M+"\"say \\\"hi\\\"\"\n  command"), "the value of `GREETING` has characters that are not safe")
case("unknown_algorithm", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  algorithm: "+M+"roundrobbin"), "unknown value `roundrobbin` for `load_balancer.algorithm`", "did you mean `roundrobin`?")
case("unknown_tls_mode", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  tls:\n    mode: "+M+"strict"), "unknown value `strict` for `load_balancer.tls.mode`", "one of `terminate`, `passthrough` or `off`")
case("cert_without_key", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  tls:\n    mode: terminate\n    cert_file: "+M+"cert.pem"), "`tls.cert_file` is given without `tls.key_file`")
case("router_id_out_of_range", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  virtual_router_id: "+M+"300"), "virtual router ID 300 is out of range")
case("bad_interface", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  interface: "+M+"\"eth0; reboot\""), "is not a valid interface name")
case("bad_health_path", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  health_check:\n    path: "+M+"\"/h ealth\""), "`/h ealth` is not a safe URL path")
case("app_path_without_slash", sub("  hosts: [web1]", "  hosts: [web1]\n  app_path: "+M+"/api"), "`/api` must end with `/`")
case("bad_server_name", sub("  hosts: [web1]", "  hosts: [web1]\n  server_name: "+M+"\"exa mple.com\""), "is not a valid server name")
case("lb_without_web", sub("web:\n  hosts: [web1]\n", "").replace("load_balancer:\n  hosts", "load_balancer:\n  "+M+"hosts"), "a load balancer tier needs a web tier")
case("empty_admin_sources", sub("name: corpus\n", "name: corpus\nfirewall:\n  admin_sources: "+M+"[]\n"), "`firewall.admin_sources` is empty", "lock everyone out")
case("bad_admin_source", sub("name: corpus\n", "name: corpus\nfirewall:\n  admin_sources: ["+M+"anywhere]\n"), "`anywhere` is not a network")
case("lab_subnet_misses_hosts", sub("name: corpus\n", "name: corpus\nlab:\n  subnet: "+M+"10.9.1.0/24\n"), "the lab subnet `10.9.1.0/24` does not hold")
case("bad_become", sub("name: corpus\n", "name: corpus\ndefaults:\n  become: "+M+"su\n"), "unknown value `su` for `defaults.become`", "one of `none` or `sudo`")
case("bad_topology_name", sub("name: corpus\n", "name: "+M+"Corpus_1\n"), "`Corpus_1` is not a valid topology name")
case("hostile_jump_host", sub("name: corpus\n", "name: corpus\ndefaults:\n  ssh:\n    jump: "+M+"\"-oProxyCommand=touch /tmp/x\"\n"), "is not a valid jump host")
case("missing_templates_dir", sub("name: corpus\n", "name: corpus\ntemplates: "+M+"no-such-templates\n"), "`templates`: folder")
case("same_db_user_names", sub("  replication_user: { name: repl,", "  replication_user: { name: "+M+"demo,"), "the replication user and the app user have the same name")
case("too_deeply_nested", sub("name: corpus\n", "name: corpus\nweb_extra: " + "{a: " * 19 + M + "{a: x" + "}" * 20 + "\n"), "the file is nested too deeply")
case("zero_rise", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  health_check:\n    rise: "+M+"0"), "`rise` must be at least 1")

case("port_zero", sub("  name: demo\n  command", "  name: demo\n  port: "+M+"0\n  command"), "`app.port` is 0, which is not a port")
case("ssh_port_collides_with_app", sub("name: corpus\n", "name: corpus\ndefaults:\n  ssh:\n    port: "+M+"8000\n"), "port 8000 on host `app1` is wanted by `ssh.port` and `app.port`")
case("app_path_is_root", sub("  hosts: [web1]", "  hosts: [web1]\n  app_path: "+M+"/"), "the app path cannot be `/`")
case("environment_overrides_port", sub("  name: demo\n  command", "  name: demo\n  environment:\n    "+M+"PORT: 9000\n  command"), "`PORT` is set by `infra`", "`PORT` is set by `infra` from `app.port`")
case("ipv4_mapped_duplicate", sub("  web1: { address: 10.9.0.21 }", "  web1: { address: "+M+"\"::ffff:10.9.0.11\" }"), "`::ffff:10.9.0.11` is an IPv4 address written as IPv6", "address `10.9.0.11` is used by `lb1` and `web1`")
case("app_named_ssh", sub("  name: demo\n  command", "  name: "+M+"ssh\n  command"), "`ssh` cannot be the app's name", "`ssh.service` and `/etc/ssh/` would replace it")
case("app_named_like_infra", sub("  name: demo\n  command", "  name: "+M+"infra-firewall\n  command"), "`infra-firewall` cannot be the app's name")
case("app_named_nginx", sub("  name: demo\n  command", "  name: "+M+"nginx\n  command"), "`nginx` cannot be the app's name")
case("database_named_mysql", sub("  name: demo\n  app_user", "  name: "+M+"mysql\n  app_user"), "`mysql` cannot be the app's database", "ALL privileges")
case("topology_named_default", sub("name: corpus\n", "name: "+M+"default\n"), "`default` cannot be a topology name")
case("database_user_root", sub("  app_user: { name: demo,", "  app_user: { name: "+M+"root,"), "`root` cannot be `app_user`")
case("vrrp_password_with_a_bang", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  vrrp_password: "+M+"\"${env:CORPUS_BANG}\""), "has `!`, which `keepalived.conf` cannot hold")
case("vrrp_password_too_long", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  vrrp_password: "+M+"\"${env:CORPUS_PASSWORD}\""), "is 15 characters long", "exactly 8 characters")
case("secret_too_short", sub("  app_user: { name: demo, password: \"${env:CORPUS_PASSWORD}\" }", "  app_user: { name: demo, password: "+M+"\"${env:CORPUS_SHORT}\" }"), "is 3 characters long", "8 to 256 characters")
case("stats_password_with_a_hash", sub("  vip: 10.9.0.10/24", "  vip: 10.9.0.10/24\n  stats:\n    password: "+M+"\"${env:CORPUS_HASH}\""), "has `#`, which `haproxy.cfg` cannot hold")
case("static_dir_outside", sub("  hosts: [web1]", "  hosts: [web1]\n  static_dir: "+M+"../invalid"), "`web.static_dir` must be a folder inside the topology's folder")
case("static_dir_absolute", sub("  hosts: [web1]", "  hosts: [web1]\n  static_dir: "+M+"/etc"), "`web.static_dir` must be a folder inside the topology's folder")
case("static_dir_holds_the_topology", sub("  hosts: [web1]", "  hosts: [web1]\n  static_dir: "+M+"."), "holds the topology file itself")
case("jump_hop_is_an_option", sub("name: corpus\n", "name: corpus\ndefaults:\n  ssh:\n    jump: "+M+"\"bastion,-oProxyCommand=x\"\n"), "`-oProxyCommand=x` is not a valid jump host")
case("rollout_batch_of_zero", sub("  command: /usr/bin/python3 -m http.server 8000\n", "  command: /usr/bin/python3 -m http.server 8000\n  rollout: { batch: "+M+"0 }\n"), "a batch of 0 hosts")
case("rollout_share_over_100", sub("  hosts: [web1]", "  hosts: [web1]\n  rollout: { batch: "+M+"\"150%\" }"), "`150%` is not a batch size")
case("rollout_wait_of_a_day", sub("  replication_user:", "  rollout: { timeout_seconds: "+M+"86400 }\n  replication_user:"), "a health-check wait of 86400 s", "1 to 3600 seconds")

MON = sub("  db2: { address: 10.9.0.42 }\n", "  db2: { address: 10.9.0.42 }\n  mon1: { address: 10.9.0.51 }\n") + "firewall: { admin_sources: [10.9.0.0/24] }\nmonitoring:\n  hosts: [mon1]\n  database_user: { name: exporter, password: \"${env:CORPUS_PASSWORD}\" }\n"
case("monitoring_without_database_user", sub("  database_user: { name: exporter, password: \"${env:CORPUS_PASSWORD}\" }\n", "", MON).replace("monitoring:\n  hosts", "monitoring:\n  "+M+"hosts"), "monitoring a database tier needs `monitoring.database_user`")
case("monitoring_undeclared_host", sub("  hosts: [mon1]", "  hosts: ["+M+"mon9]", MON), "`monitoring` refers to undeclared host `mon9`", "did you mean `mon1`?")
case("monitoring_disk_percent_out_of_range", MON + "  alerts: { disk_used_percent: "+M+"100 }\n", "`monitoring.alerts.disk_used_percent` is 100, out of range", "from 1 to 99")
case("monitoring_password_with_a_question_mark", sub("password: \"${env:CORPUS_PASSWORD}\" }\n", "password: "+M+"\"${env:CORPUS_QUESTION}\" }\n", MON[MON.index("monitoring:"):]).join([MON[:MON.index("monitoring:")], ""]), "has `?`, which the MariaDB exporter's data source name cannot hold")
case("monitoring_user_is_the_app_user", sub("  database_user: { name: exporter,", "  database_user: { name: "+M+"demo,", MON), "`demo` is already a database account of the topology")
case("monitoring_open_to_anyone", sub("firewall: { admin_sources: [10.9.0.0/24] }\n", "firewall: { enabled: "+M+"false }\n", MON).replace("  hosts: [mon1]", "  hosts: [mon1]\n  retention_days: "+M+"0"), "with the firewall off, the exporters and Prometheus answer anyone who reaches them", "`monitoring.retention_days` is 0, out of range")
case("port_collision_app_and_node_exporter", sub("  name: demo\n  command", "  name: demo\n  port: "+M+"9100\n  command", MON), "port 9100 on host `app1` is wanted by `app.port` and `monitoring (node exporter)`")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "invalid")
for f in os.listdir(out):
    os.remove(os.path.join(out, f))
for name, text, messages in cases:
    hdr_count = text.count(M) + len([m for m in messages if m])
    positions = []
    body = text
    while M in body:
        idx = body.index(M)
        before = body[:idx]
        line = before.count("\n") + 1 + hdr_count
        col = len(before) - (before.rfind("\n") + 1) + 1
        positions.append(f"# position: {line}:{col}")
        body = body.replace(M, "", 1)
    hdr = positions + [f"# message: {m}" for m in messages if m]
    with open(os.path.join(out, name + ".yaml"), "w") as fh:
        fh.write("\n".join(hdr) + "\n" + body)
print(len(cases))
