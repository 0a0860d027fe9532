//! docs/provider-errors.md is the one list of provider error codes: every
//! row must be classified by the clients exactly as the row says, must name
//! a source the document defines, and every code the emulator can answer
//! with must be a row of the right table.

use cloudrotate::emulator::codes::{self, DocumentedRow, documented_rows};
use cloudrotate::providers::alicloud::client as alibaba;
use cloudrotate::providers::huaweicloud::{client as huawei, dcs};
use cloudrotate::providers::{CallInfo, ErrorClass, ErrorKind};
use serde_json::json;

fn rows() -> Vec<DocumentedRow> {
    documented_rows(codes::PROVIDER_ERRORS).expect("the document parses")
}

/// What the clients make of the answer a row describes.
fn client_classification(row: &DocumentedRow) -> (ErrorClass, ErrorKind) {
    let info = CallInfo {
        request_id: None,
        http_status: row.http_status,
        attempts: 1,
    };
    let status = row.http_status;
    match row.table.as_str() {
        "alibaba" | "polardb" | "dts" | "ram" => alibaba::classify(status, Some(&row.code)),
        _ => {
            if let Some(message) = row.code.strip_prefix("message: ") {
                huawei::classify(status, Some(&status.to_string()), message)
            } else if let Some(result) = row.code.strip_prefix("result: ") {
                let error = dcs::check_update_answer(&json!({ "result": result }), &info, &[])
                    .expect_err("a failure value");
                (error.class, error.kind)
            } else if let Some(code) = row.code.strip_prefix("reset code: ") {
                let error = dcs::check_reset_answer(&json!({ "code": code }), &info, &[])
                    .expect_err("a failure value");
                (error.class, error.kind)
            } else {
                huawei::classify(status, Some(&row.code), "")
            }
        }
    }
}

#[test]
fn every_row_is_classified_as_the_document_says() {
    let rows = rows();
    assert!(rows.len() > 60, "only {} rows parsed", rows.len());
    let mut wrong = Vec::new();
    for row in &rows {
        let (class, kind) = client_classification(row);
        let computed = (class.name().to_owned(), format!("{kind:?}"));
        if computed != (row.class.clone(), row.kind.clone()) {
            wrong.push(format!(
                "{}: {} (HTTP {}): document says {} / {}, client gives {} / {}",
                row.table, row.code, row.http_status, row.class, row.kind, computed.0, computed.1
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_row_names_a_source_the_document_defines() {
    let defined: Vec<String> = codes::PROVIDER_ERRORS
        .lines()
        .filter_map(|line| line.strip_prefix("- **"))
        .filter_map(|rest| rest.split("**").next())
        .map(str::to_owned)
        .collect();
    assert!(defined.len() >= 10, "{defined:?}");
    for row in rows() {
        assert!(
            defined.contains(&row.source),
            "{} {}: source {:?} is not defined",
            row.table,
            row.code,
            row.source
        );
    }
}

#[test]
fn every_code_the_emulator_can_answer_with_is_documented() {
    let rows = rows();
    let listed = |table: &str, code: &str| {
        rows.iter()
            .any(|row| row.table == table && row.code == code)
    };
    for code in codes::ALL {
        assert!(
            listed(code.table(), code.as_str()),
            "the emulator answers {} ({} table) but docs/provider-errors.md does not list it",
            code.as_str(),
            code.table()
        );
    }
    // Answers that carry no code of their own but a documented value.
    for (table, value) in [
        ("iam", "message: akSkNumExceed"),
        ("dcs", "result: passwordFailed"),
        ("dcs", "result: locked"),
        ("dcs", "reset code: 3"),
    ] {
        assert!(listed(table, value), "{table} {value}");
    }
}

#[test]
fn codes_of_one_table_are_not_listed_twice_with_one_status() {
    let rows = rows();
    for (i, row) in rows.iter().enumerate() {
        for other in &rows[i + 1..] {
            assert!(
                !(row.table == other.table
                    && row.code == other.code
                    && row.http_status == other.http_status),
                "{} {} {} twice",
                row.table,
                row.code,
                row.http_status
            );
        }
    }
}
