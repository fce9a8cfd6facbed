use super::*;

fn errors(source: &str) -> Vec<WorkflowError> {
    parse_workflow("shop.toml", source).expect_err("the workflow is invalid")
}

fn one_error(source: &str) -> WorkflowError {
    let errs = errors(source);
    assert_eq!(errs.len(), 1, "expected exactly one error, got {errs:#?}");
    errs.into_iter().next().expect("one error")
}

const TWO_STAGES: &str = r#"name = "Shop"
[[stages]]
key = "making"
label = "Making"
duration = "2d"

[[stages]]
key = "done"
label = "Done"
"#;

#[test]
fn a_minimal_workflow_moves_linearly_and_ends_in_a_final_stage() {
    let wf = parse_workflow("shop.toml", TWO_STAGES).expect("valid");
    assert_eq!(wf.key.as_str(), "shop", "the key defaults to the file stem");
    assert_eq!(wf.stages[0].moves.len(), 1);
    assert_eq!(wf.stages[0].moves[0].to.as_str(), "done");
    assert!(wf.stages[1].is_final());
    assert_eq!(wf.stages[0].expected, Some(std::time::Duration::from_secs(2 * 86_400)));
    assert!(wf.notify.cancel && !wf.notify.hold);
}

#[test]
fn an_unknown_stage_in_a_move_is_reported_with_its_line() {
    let src = TWO_STAGES.replace("duration = \"2d\"", "duration = \"2d\"\nmoves = [\"dnoe\"]");
    let err = one_error(&src);
    assert_eq!(err.line, 6);
    assert!(err.message.contains("unknown stage `dnoe`"), "{}", err.message);
    assert!(err.message.contains("known stages: making, done"), "{}", err.message);
    assert!(err.to_string().starts_with("shop.toml:6:"));
}

#[test]
fn a_duplicate_stage_key_names_both_lines() {
    let src = format!("{TWO_STAGES}\n[[stages]]\nkey = \"making\"\nlabel = \"Again\"\n");
    let errs = errors(&src);
    let dup = errs.iter().find(|e| e.message.contains("duplicate stage key")).expect("duplicate reported");
    assert_eq!(dup.line, 12);
    assert!(dup.message.contains("first declared on line 3"), "{}", dup.message);
}

#[test]
fn a_duplicate_toml_key_is_a_syntax_error_with_a_line() {
    let src = "name = \"Shop\"\nname = \"Other\"\n";
    let err = one_error(src);
    assert_eq!(err.line, 2);
    assert!(err.message.to_lowercase().contains("duplicate"), "{}", err.message);
}

#[test]
fn an_unreachable_stage_is_reported() {
    let src = r#"name = "Shop"
[[stages]]
key = "a"
label = "A"
final = true

[[stages]]
key = "b"
label = "B"
"#;
    let err = one_error(src);
    assert_eq!(err.line, 8);
    assert!(err.message.contains("stage `b` is unreachable"), "{}", err.message);
}

#[test]
fn a_workflow_without_a_final_stage_is_refused() {
    let src = TWO_STAGES.replace("label = \"Done\"", "label = \"Done\"\nduration = \"1d\"\nmoves = [\"making\"]");
    let errs = errors(&src);
    assert!(errs.iter().any(|e| e.message.starts_with("no final stage")), "{errs:#?}");
}

#[test]
fn a_loop_that_can_never_finish_is_refused() {
    let src = r#"name = "Shop"
[[stages]]
key = "a"
label = "A"
duration = "1d"
moves = ["c"]

[[stages]]
key = "b"
label = "B"
final = true

[[stages]]
key = "c"
label = "C"
duration = "1d"
moves = ["d"]

[[stages]]
key = "d"
label = "D"
duration = "1d"
moves = ["c"]
"#;
    let errs = errors(src);
    assert!(errs.iter().any(|e| e.message == "orders in stage `c` can never reach a final stage"), "{errs:#?}");
}

#[test]
fn unknown_fields_bad_durations_and_bad_keys_are_named() {
    let err = one_error(&TWO_STAGES.replace("label = \"Making\"", "label = \"Making\"\ncolour = \"red\""));
    assert_eq!(err.line, 5);
    assert!(err.message.contains("colour"), "{}", err.message);

    let err = one_error(&TWO_STAGES.replace("\"2d\"", "\"two days\""));
    assert_eq!(err.line, 5);
    assert!(err.message.contains("invalid duration `two days`"), "{}", err.message);

    let err = one_error(&TWO_STAGES.replace("\"making\"", "\"Making Stage\""));
    assert_eq!(err.line, 3);
    assert!(err.message.contains("not a valid key"), "{}", err.message);
}

#[test]
fn a_notifying_hidden_stage_and_a_missing_duration_are_refused() {
    let src = TWO_STAGES.replace("duration = \"2d\"", "notify = true\nvisible = false");
    let errs = errors(&src);
    assert!(errs.iter().any(|e| e.message.contains("notifies the customer but is not customer-visible")));
    assert!(errs.iter().any(|e| e.message.contains("needs an expected `duration`")));
}

#[test]
fn declared_moves_get_labels_and_keep_the_linear_next() {
    let src = TWO_STAGES.replace("label = \"Done\"", "label = \"Done\"\nfinal = true")
        + "\n[[stages]]\nkey = \"extra\"\nlabel = \"Extra\"\n";
    // `extra` is unreachable, and `done` is final: one error.
    let err = one_error(&src);
    assert!(err.message.contains("`extra` is unreachable"));

    let src =
        TWO_STAGES.replace("duration = \"2d\"", "duration = \"2d\"\nmoves = [{ to = \"done\", label = \"Skip\" }]");
    let err = one_error(&src);
    assert!(err.message.contains("declared twice"), "{}", err.message);
}

#[test]
fn duplicate_workflow_keys_across_files_are_refused() {
    let errs = collect(
        [
            ("a.toml", TWO_STAGES.replace("name", "key = \"x\"\nname").as_str()),
            ("b.toml", TWO_STAGES.replace("name", "key = \"x\"\nname").as_str()),
        ]
        .into_iter(),
    )
    .expect_err("duplicate keys");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("also used by a.toml"));
}

const PROOF: &str = r#"name = "Shop"
[[stages]]
key = "design"
label = "Design"
duration = "2d"

[[stages]]
key = "proof"
label = "Proof"
duration = "1d"
notify = true
approval = { approve = "making", changes = "design", remind_after = "2d" }

[[stages]]
key = "making"
label = "Making"
duration = "2d"

[[stages]]
key = "done"
label = "Done"
"#;

#[test]
fn an_approval_stage_waits_on_the_customer_and_allows_both_of_its_moves() {
    let wf = parse_workflow("shop.toml", PROOF).expect("valid");
    let proof = wf.stage("proof").expect("proof stage");
    let approval = proof.approval.as_ref().expect("an approval stage");
    assert_eq!((approval.approve.as_str(), approval.changes.as_str()), ("making", "design"));
    assert_eq!(approval.remind_after, Some(std::time::Duration::from_secs(2 * 86_400)));
    assert!(proof.waits_on_customer);
    let moves: Vec<&str> = proof.moves.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(moves, ["making", "design"], "the change request is added as a move");
    assert!(!wf.stage("making").expect("making").waits_on_customer);
}

#[test]
fn a_bad_approval_is_reported_with_its_line() {
    let err = one_error(&PROOF.replace("changes = \"design\"", "changes = \"desing\""));
    assert_eq!(err.line, 12);
    assert!(err.message.contains("unknown stage `desing`"), "{}", err.message);

    let err = one_error(&PROOF.replace("notify = true\n", ""));
    assert_eq!(err.line, 11);
    assert!(err.message.contains("notify = true"), "{}", err.message);

    let err = one_error(&PROOF.replace("changes = \"design\"", "changes = \"making\""));
    assert!(err.message.contains("different stages"), "{}", err.message);

    let err = one_error(&PROOF.replace("remind_after = \"2d\"", "remind_after = \"soon\""));
    assert!(err.message.contains("invalid `remind_after` `soon`"), "{}", err.message);

    let err = one_error(&PROOF.replace("key = \"making\"\n", "key = \"making\"\nwaits_on = \"courier\"\n"));
    assert_eq!(err.line, 16);
    assert!(err.message.contains("`customer` or `shop`"), "{}", err.message);
}
