#[crux::action]
pub struct Respond;

fn main() {}
