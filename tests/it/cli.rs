//! The `kiln` binary's admin commands.

use std::process::Command;

fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env_remove("KILN_DATABASE_URL").env_remove("KILN_CONFIG").env("NO_COLOR", "1");
    cmd
}

#[test]
fn workflow_check_names_the_file_line_and_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bakery.toml");
    std::fs::write(
        &bad,
        "name = \"Bakery\"\n\n[[stages]]\nkey = \"dough\"\nlabel = \"Dough\"\nduration = \"1h\"\nmoves = [\"ovn\"]\n\n[[stages]]\nkey = \"baked\"\nlabel = \"Baked\"\n",
    )
    .expect("write");
    let out = kiln().args(["workflow", "check"]).arg(&bad).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected =
        format!("{}:7:10: unknown stage `ovn` in a move from `dough` (known stages: dough, baked)", bad.display());
    assert!(stderr.contains(&expected), "{stderr}");

    let out = kiln().args(["workflow", "check", "workflows"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stone (9 stages)") && stdout.contains("jewelry (5 stages)"), "{stdout}");

    let proof = dir.path().join("proofs.toml");
    std::fs::write(
        &proof,
        "name = \"Proofs\"\n[[stages]]\nkey = \"proof\"\nlabel = \"Proof\"\nduration = \"1d\"\nnotify = true\napproval = { approve = \"done\", changes = \"redo\" }\n\n[[stages]]\nkey = \"done\"\nlabel = \"Done\"\n",
    )
    .expect("write");
    let out = kiln().args(["workflow", "check"]).arg(&proof).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected =
        format!("{}:7:42: unknown stage `redo` as the stage `proof` sends change requests to", proof.display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_server_with_an_invalid_workflow_refuses_to_start_and_says_where() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).expect("mkdir");
    std::fs::write(
        flows.join("x.toml"),
        "name = \"X\"\n[[stages]]\nkey = \"a\"\nlabel = \"A\"\nduration = \"1d\"\nmoves = [\"a\"]\n",
    )
    .expect("write");
    let out = kiln()
        .arg("serve")
        .env("KILN_WORKFLOWS_DIR", &flows)
        .env("KILN_DATA_DIR", dir.path().join("data"))
        .env("KILN_BIND", "127.0.0.1:0")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("x.toml:6:10: stage `a` cannot move to itself"), "{stderr}");
}

#[test]
fn a_bad_config_file_is_reported_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("kiln.toml");
    std::fs::write(&config, "bind = \"127.0.0.1:0\"\nmax_body_bytes = \"lots\"\n").expect("write");
    let out = kiln().arg("--config").arg(&config).arg("migrate").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:2:18: invalid type", config.display())), "{stderr}");
}

#[test]
fn tokens_are_printed_once_and_stored_hashed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| kiln().args(args).env("KILN_DATA_DIR", dir.path()).output().expect("runs");
    let out = run(&["token", "create", "--name", "zapier", "--scope", "read"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("kiln_") && token.len() > 40, "{token}");

    let out = run(&["token", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("zapier") && listing.contains("read") && listing.contains("active"), "{listing}");
    assert!(!listing.contains(&token), "the secret is never shown again");
    let db = std::fs::read(dir.path().join("kiln.db")).expect("database file");
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "the token is not in the database");

    assert!(run(&["token", "revoke", "1"]).status.success());
    assert!(String::from_utf8_lossy(&run(&["token", "list"]).stdout).contains("revoked"));
    let out = run(&["token", "create", "--name", "x", "--scope", "admin"]);
    assert!(!out.status.success());
}

#[test]
fn users_are_added_listed_and_disabled_from_the_command_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| kiln().args(args).env("KILN_DATA_DIR", dir.path()).output().expect("runs");
    let mut child = kiln()
        .args(["user", "add", "--email", "Ann@Shop.example", "--role", "operator", "--password-stdin"])
        .env("KILN_DATA_DIR", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child.stdin.take().expect("stdin").write_all(b"correct horse battery\n").expect("password written");
    let out = child.wait_with_output().expect("finishes");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("added ann@shop.example (ann) as operator"));

    let out = run(&["user", "add", "--email", "own@shop.example", "--role", "owner", "--generate-password"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let password = printed.lines().find_map(|l| l.strip_prefix("password (shown once): ")).expect("password printed");
    assert!(password.len() >= 20, "{password}");
    let db = std::fs::read(dir.path().join("kiln.db")).expect("database file");
    assert!(!db.windows(password.len()).any(|w| w == password.as_bytes()), "only the hash is stored");

    // Without a terminal and without a flag there is nobody to ask.
    let out = run(&["user", "add", "--email", "x@shop.example", "--role", "viewer"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
    let out = run(&["user", "add", "--email", "ann@shop.example", "--role", "viewer", "--generate-password"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = run(&["user", "add", "--email", "not-an-email", "--role", "viewer", "--generate-password"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an email address"));

    let listing = String::from_utf8_lossy(&run(&["user", "list"]).stdout).to_string();
    assert!(
        listing.contains("ann@shop.example") && listing.contains("operator") && listing.contains("active"),
        "{listing}"
    );
    assert!(run(&["user", "disable", "ANN@shop.example"]).status.success());
    let listing = String::from_utf8_lossy(&run(&["user", "list"]).stdout).to_string();
    assert!(listing.lines().any(|l| l.contains("ann@shop.example") && l.contains("disabled")), "{listing}");
    let out = run(&["user", "disable", "nobody@shop.example"]);
    assert!(!out.status.success());
}
