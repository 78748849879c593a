//! Spreadsheets through calamine: XLSX, XLSB, ODS and legacy XLS. Each sheet is a section
//! ("sheet NAME"): its rows as lines, cells tab-separated, numbers as a person reads them
//! ("12", not "12.0"), dates as dates, empty rows skipped. Zip containers have passed the
//! zip-bomb check (office.rs) before they get here.

use std::io::Cursor;

use calamine::{Data, Ods, Range, Reader, Xls, Xlsb, Xlsx};

use super::xml::Builder;
use super::{DocType, Document, Skip};

/// Cells read from one workbook at most; the rest of a larger one is left out.
const MAX_CELLS: usize = 5_000_000;

fn corrupt<E>(_: E) -> Skip {
    Skip::Corrupt("spreadsheet could not be read".into())
}

/// calamine panics on some damaged workbooks (an index it trusted): that is a damaged file too.
pub fn guarded(read: impl FnOnce() -> Result<Document, Skip>) -> Result<Document, Skip> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| Err(corrupt(())))
}

/// XLSX cells are streamed (a sheet that claims cells at both ends of the grid costs only the
/// cells it has), then put in row order.
pub fn xlsx(bytes: &[u8]) -> Result<Document, Skip> {
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(corrupt)?;
    let props = wb.workbook_properties().ok();
    let mut b = Builder::keeping_lines();
    let mut budget = MAX_CELLS;
    for name in wb.sheet_names() {
        let Ok(mut reader) = wb.worksheet_cells_reader(&name) else { continue };
        let mut cells: Vec<(u32, u32, String)> = Vec::new();
        while budget > 0 {
            match reader.next_cell() {
                Ok(Some(cell)) => {
                    let (row, col) = cell.get_position();
                    let text = cell_text(&Data::from(cell.get_value().clone()));
                    if !text.is_empty() {
                        budget -= 1;
                        cells.push((row, col, text));
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(corrupt(e)),
            }
        }
        cells.sort_by_key(|&(r, c, _)| (r, c));
        b.section(format!("sheet {name}"));
        let mut last_row = None;
        for (row, _, text) in cells {
            if last_row.is_some_and(|r| r != row) {
                b.push("\n");
            } else if last_row.is_some() {
                b.push("\t");
            }
            last_row = Some(row);
            b.push(&text);
        }
    }
    let mut doc = b.finish(DocType::Spreadsheet);
    if let Some(p) = props {
        doc.title = p.title;
        doc.author = p.creator;
    }
    Ok(doc)
}

pub fn xlsb(bytes: &[u8]) -> Result<Document, Skip> {
    let mut wb: Xlsb<_> = Xlsb::new(Cursor::new(bytes)).map_err(corrupt)?;
    let props = wb.workbook_properties().ok().map(|p| (p.title, p.creator));
    ranges(&mut wb, props)
}

pub fn ods(bytes: &[u8]) -> Result<Document, Skip> {
    let mut wb: Ods<_> = Ods::new(Cursor::new(bytes)).map_err(corrupt)?;
    let props = wb.workbook_properties().ok().map(|p| (p.title, p.creator));
    ranges(&mut wb, props)
}

pub fn xls(bytes: &[u8]) -> Result<Document, Skip> {
    let mut wb: Xls<_> = Xls::new(Cursor::new(bytes)).map_err(|e| match e {
        calamine::XlsError::Password => super::password_protected(),
        e => corrupt(e),
    })?;
    let props = wb.workbook_properties().ok().map(|p| (p.title, p.creator));
    ranges(&mut wb, props)
}

/// Every worksheet as a calamine range (ODS, XLS, XLSB).
fn ranges<RS: std::io::Read + std::io::Seek, R: Reader<RS>>(wb: &mut R, props: Option<(Option<String>, Option<String>)>) -> Result<Document, Skip> {
    let mut b = Builder::keeping_lines();
    let mut budget = MAX_CELLS;
    for name in wb.sheet_names() {
        // A chart sheet has no cells: it is not an error.
        let Ok(range) = wb.worksheet_range(&name) else { continue };
        b.section(format!("sheet {name}"));
        push_range(&mut b, &range, &mut budget);
    }
    let mut doc = b.finish(DocType::Spreadsheet);
    if let Some((title, author)) = props {
        doc.title = title;
        doc.author = author;
    }
    Ok(doc)
}

fn push_range(b: &mut Builder, range: &Range<Data>, budget: &mut usize) {
    for row in range.rows() {
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        let Some(last) = cells.iter().rposition(|c| !c.is_empty()) else { continue };
        if *budget == 0 {
            return;
        }
        *budget = budget.saturating_sub(last + 1);
        b.push(&cells[..=last].join("\t"));
        b.push("\n");
    }
}

/// A cell as a person reads it.
pub fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        // A cell's own line breaks and tabs would split its row.
        Data::String(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if dt.is_datetime() => {
                if t.time() == chrono::NaiveTime::MIN {
                    t.format("%Y-%m-%d").to_string()
                } else if t.date() == chrono::NaiveDate::from_ymd_opt(1899, 12, 31).expect("a date") || dt.as_f64() < 1.0 {
                    t.format("%H:%M:%S").to_string()
                } else {
                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                }
            }
            _ => number(dt.as_f64()),
        },
        Data::DateTimeIso(s) => s.replacen('T', " ", 1),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

/// Whole numbers without a decimal point; others to 15 significant digits, so 0.1 + 0.2 reads
/// as 0.3, as a spreadsheet shows it.
fn number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_reads_them() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(-47.5), "-47.5");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(1234567.0), "1234567");
        assert_eq!(cell_text(&Data::Bool(true)), "TRUE");
        assert_eq!(cell_text(&Data::String(" 租金 ".into())), "租金");
    }

    #[test]
    fn rows_are_lines_cells_are_tabs_empty_rows_dropped() {
        let mut r: Range<Data> = Range::new((0, 0), (3, 2));
        r.set_value((0, 0), Data::String("Item".into()));
        r.set_value((0, 1), Data::String("Amount".into()));
        r.set_value((2, 0), Data::String("Jam".into()));
        r.set_value((2, 1), Data::Float(12.0));
        let mut b = Builder::keeping_lines();
        b.section("sheet Budget");
        let mut budget = 100;
        push_range(&mut b, &r, &mut budget);
        let d = b.finish(DocType::Spreadsheet);
        assert_eq!(d.text, "Item\tAmount\nJam\t12");
        assert_eq!(d.sections[0].label, "sheet Budget");
    }

    #[test]
    fn damaged_workbooks_are_corrupt() {
        assert!(matches!(xls(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 not really"), Err(Skip::Corrupt(_))));
        assert!(matches!(xlsx(b"PK\x03\x04 nope"), Err(Skip::Corrupt(_))));
    }
}
