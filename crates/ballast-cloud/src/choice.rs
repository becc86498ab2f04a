//! Which server type a scale-up creates, when a group allows several.

use std::fmt;

use crate::config::ServerTypeSpec;
use crate::group::Price;

/// Whether a server type can be created at the group's place now, as the provider's
/// catalogue says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// It can be created.
    Available,
    /// It can still be created but is being withdrawn (Hetzner: a deprecation announced for
    /// the location): chosen only when no other listed type can be created.
    Withdrawing(String),
    /// Sold out for now (Scaleway `shortage`, OVHcloud `available: false`, or a create
    /// refused as sold out): it may come back.
    SoldOut(String),
    /// Not offered at the place at all: unknown, not sold there, or withdrawn.
    NotOffered(String),
}

impl Availability {
    /// Whether a server of this type can be created now.
    pub fn can_create(&self) -> bool {
        matches!(self, Availability::Available | Availability::Withdrawing(_))
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Availability::Available => f.write_str("available"),
            Availability::Withdrawing(why) => write!(f, "being withdrawn ({why})"),
            Availability::SoldOut(why) => write!(f, "sold out ({why})"),
            Availability::NotOffered(why) => write!(f, "not offered ({why})"),
        }
    }
}

/// One server type as the provider's catalogue offers it at the group's place.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// The type's name, as configured.
    pub server_type: String,
    /// The hourly price of one server of it there, if the catalogue has one.
    pub price: Option<Price>,
    /// Its CPU count (Hetzner `cores`, Scaleway `ncpus`, OVHcloud `vcpus`), if known.
    pub cpus: Option<f64>,
    /// Whether it can be created there now.
    pub availability: Availability,
}

impl Offer {
    /// A type the catalogue does not offer at the place, with why.
    pub fn not_offered(server_type: &str, why: impl Into<String>) -> Offer {
        Offer {
            server_type: server_type.to_string(),
            price: None,
            cpus: None,
            availability: Availability::NotOffered(why.into()),
        }
    }
}

/// One type a scale-up may create, with what it costs per unit of capacity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Choice {
    pub server_type: String,
    pub price: Option<Price>,
    /// Units of capacity per server: the configured `capacity`, else the catalogue's CPU
    /// count, else 1.
    pub capacity: f64,
    pub withdrawing: bool,
}

impl Choice {
    /// The hourly price of one unit of capacity.
    pub fn per_unit(&self) -> Option<f64> {
        self.price.as_ref().map(|p| p.hourly / self.capacity)
    }
}

/// The types a scale-up tries, best first, and those it leaves out, with why.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Plan {
    pub order: Vec<Choice>,
    pub left_out: Vec<(String, Availability)>,
}

impl Plan {
    /// Every configured type, in the order written, as if all could be created (when the
    /// catalogue cannot be read and nothing better is known).
    pub fn as_listed(specs: &[ServerTypeSpec]) -> Plan {
        Plan {
            order: specs
                .iter()
                .map(|s| Choice {
                    server_type: s.name.clone(),
                    price: None,
                    capacity: s.capacity.unwrap_or(1.0),
                    withdrawing: false,
                })
                .collect(),
            left_out: Vec::new(),
        }
    }

    /// Takes `server_type` out of the order (a create found it sold out).
    pub fn sold_out(&mut self, server_type: &str, why: String) {
        self.order.retain(|c| c.server_type != server_type);
        self.left_out
            .push((server_type.to_string(), Availability::SoldOut(why)));
    }

    /// Why nothing can be created, naming each type left out.
    pub fn nothing_left(&self, place: &str) -> String {
        let each = self
            .left_out
            .iter()
            .map(|(t, a)| format!("{t}: {a}"))
            .collect::<Vec<_>>()
            .join("; ");
        format!("none of the group's server types can be created at {place} now ({each})")
    }

    /// Whether every type left out is gone for good (then waiting will not help).
    pub fn only_lasting_reasons(&self) -> bool {
        !self.left_out.is_empty()
            && self
                .left_out
                .iter()
                .all(|(_, a)| matches!(a, Availability::NotOffered(_)))
    }
}

/// Orders the configured types for a scale-up.
///
/// The rule: only types the catalogue says can be created at the group's place take part
/// (sold-out and not-offered ones are left out, with why). Among those, types still
/// orderable but being withdrawn come after all others; then the lowest hourly price per
/// unit of capacity comes first, where a server's capacity is its configured `capacity`,
/// else the catalogue's CPU count, else 1; types without a known price come after the
/// priced ones; ties keep the order written. A configured type the catalogue did not
/// answer for counts as not offered.
pub(crate) fn rank(specs: &[ServerTypeSpec], offers: &[Offer]) -> Plan {
    let mut plan = Plan::default();
    let mut ranked: Vec<(usize, Choice)> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let Some(offer) = offers.iter().find(|o| o.server_type == spec.name) else {
            plan.left_out.push((
                spec.name.clone(),
                Availability::NotOffered("the catalogue does not list it".into()),
            ));
            continue;
        };
        if !offer.availability.can_create() {
            plan.left_out
                .push((spec.name.clone(), offer.availability.clone()));
            continue;
        }
        let capacity = spec
            .capacity
            .or(offer.cpus.filter(|c| c.is_finite() && *c > 0.0))
            .unwrap_or(1.0);
        ranked.push((
            index,
            Choice {
                server_type: spec.name.clone(),
                price: offer.price.clone(),
                capacity,
                withdrawing: matches!(offer.availability, Availability::Withdrawing(_)),
            },
        ));
    }
    ranked.sort_by(|(ia, a), (ib, b)| {
        a.withdrawing
            .cmp(&b.withdrawing)
            .then_with(|| match (a.per_unit(), b.per_unit()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then(ia.cmp(ib))
    });
    plan.order = ranked.into_iter().map(|(_, c)| c).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(name: &str, hourly: Option<f64>, cpus: Option<f64>, a: Availability) -> Offer {
        Offer {
            server_type: name.into(),
            price: hourly.map(|hourly| Price {
                hourly,
                currency: "EUR".into(),
            }),
            cpus,
            availability: a,
        }
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.order.iter().map(|c| c.server_type.as_str()).collect()
    }

    #[test]
    fn the_lowest_price_per_unit_of_capacity_comes_first() {
        let specs = [ServerTypeSpec::named("small"), ServerTypeSpec::named("big")];
        let offers = [
            offer("small", Some(0.01), Some(2.0), Availability::Available),
            offer("big", Some(0.016), Some(4.0), Availability::Available),
        ];
        assert_eq!(names(&rank(&specs, &offers)), ["big", "small"]);
        // A configured capacity outweighs the CPU count.
        let specs = [
            ServerTypeSpec {
                name: "small".into(),
                capacity: Some(8.0),
            },
            ServerTypeSpec::named("big"),
        ];
        let plan = rank(&specs, &offers);
        assert_eq!(names(&plan), ["small", "big"]);
        assert_eq!(plan.order[0].per_unit(), Some(0.01 / 8.0));
    }

    #[test]
    fn unavailable_types_are_left_out_and_withdrawing_ones_come_last() {
        let specs = ["a", "b", "c", "d", "e"].map(ServerTypeSpec::named);
        let offers = [
            offer(
                "a",
                Some(0.001),
                Some(1.0),
                Availability::SoldOut("x".into()),
            ),
            offer(
                "b",
                Some(0.002),
                Some(1.0),
                Availability::Withdrawing("y".into()),
            ),
            offer("c", Some(0.009), Some(1.0), Availability::Available),
            offer("d", None, Some(1.0), Availability::Available),
        ];
        let plan = rank(&specs, &offers);
        assert_eq!(names(&plan), ["c", "d", "b"]);
        let left: Vec<&str> = plan.left_out.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(left, ["a", "e"]);
        assert!(!plan.only_lasting_reasons());
    }

    #[test]
    fn ties_keep_the_order_written() {
        let specs = ["x", "y"].map(ServerTypeSpec::named);
        let offers = [
            offer("y", Some(0.02), Some(2.0), Availability::Available),
            offer("x", Some(0.01), Some(1.0), Availability::Available),
        ];
        assert_eq!(names(&rank(&specs, &offers)), ["x", "y"]);
    }
}
