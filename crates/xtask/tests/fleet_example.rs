//! examples/fleet-50 is what the generator makes, and a valid topology.

use std::path::Path;

use xtask::fleet::{self, Shape};

#[test]
fn the_fleet_example_is_the_generators_output_and_valid() {
    let root = xtask::workspace_root();
    let example = root.join("examples/fleet-50");
    let files = fleet::files(
        "fleet-50",
        Shape::for_hosts(50).expect("shape"),
        "cargo xtask fleet --hosts 50 --out examples/fleet-50",
        &root.join("examples/scale-up"),
    )
    .expect("generated");
    for (path, bytes) in &files {
        let committed = std::fs::read(example.join(path)).unwrap_or_default();
        assert!(
            committed == *bytes,
            "examples/fleet-50/{path} is not what the generator makes: run `cargo xtask fleet --hosts 50 --out examples/fleet-50`"
        );
    }
    let env = |name: &str| match name {
        "INFRA_VRRP_PASSWORD" => Some("a1b2c3d4".to_owned()),
        name if name.starts_with("INFRA_") => Some("0123456789abcdef0123".to_owned()),
        _ => None,
    };
    let loaded = infra_topology::load(&example.join("infra.yaml"), &env).expect("valid");
    let topology = loaded.topology;
    assert_eq!(topology.hosts.len(), 50);
    assert!(loaded.warnings.is_empty(), "no warnings");
    assert_eq!(
        topology.web.as_ref().map(|w| w.hosts.len()),
        Some(20),
        "20 web hosts"
    );
    assert_eq!(
        topology.database.as_ref().map(|d| d.replicas.len()),
        Some(7),
        "a primary and 7 replicas"
    );
}

#[test]
fn every_generated_size_is_a_valid_topology() {
    let root = xtask::workspace_root();
    let dir = tempfile::tempdir().expect("dir");
    for hosts in [1, 2, 3, 5, 7, 8, 9, 25, 100, 500] {
        let files = fleet::files(
            "fleet",
            Shape::for_hosts(hosts).expect("shape"),
            "test",
            &root.join("examples/scale-up"),
        )
        .expect("generated");
        let out = dir.path().join(hosts.to_string());
        fleet::write(&out, &files).expect("written");
        let env = |name: &str| match name {
            "INFRA_VRRP_PASSWORD" => Some("a1b2c3d4".to_owned()),
            name if name.starts_with("INFRA_") => Some("0123456789abcdef0123".to_owned()),
            _ => None,
        };
        let loaded = infra_topology::load(&Path::new(&out).join("infra.yaml"), &env)
            .unwrap_or_else(|e| panic!("{hosts} hosts: {e:?}"));
        assert_eq!(loaded.topology.hosts.len(), hosts);
    }
}
