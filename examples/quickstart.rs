//! SKELETON: the quickstart walkthrough comes with the macros (issue 3).
fn main() {
    println!("cacheward quickstart: not written yet");
}
