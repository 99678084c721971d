"""A team namespace's NetworkPolicies: everything denied but DNS, the namespace's own pods and HTTPS
to the AWS endpoints; the node's metadata service stays out of reach."""
from __future__ import annotations

import ipaddress

import pytest

from specs.k8s import network_policy

LABELS = {"mlops.dev/team": "t"}


def egress_allows(policy: dict, *, ip: str, port: int, protocol: str = "TCP", pod_in_namespace: bool = False, dns_pod: bool = False) -> bool:
    """Whether one of `policy`'s egress rules lets a pod reach (ip, port) (a tiny evaluator of the rules
    the module writes: ipBlock with except, podSelector {} in the namespace, kube-dns)."""
    for rule in policy["spec"].get("egress", []):
        ports = rule.get("ports")
        if ports is not None and not any(p["port"] == port and p["protocol"] == protocol for p in ports):
            continue
        for peer in rule.get("to", []):
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                inside = ipaddress.ip_address(ip) in ipaddress.ip_network(block["cidr"])
                excepted = any(ipaddress.ip_address(ip) in ipaddress.ip_network(e) for e in block.get("except", []))
                if inside and not excepted:
                    return True
            elif peer == {"podSelector": {}} and pod_in_namespace:
                return True
            elif peer == network_policy.KUBE_DNS and dns_pod:
                return True
    return False


def test_the_namespace_denies_everything_by_default():
    deny, allow = network_policy.network_policies(namespace="t-dev", labels=LABELS)
    assert network_policy.is_default_deny(deny)
    assert not network_policy.is_default_deny(allow)
    assert deny["metadata"]["namespace"] == allow["metadata"]["namespace"] == "t-dev"


def test_a_run_reaches_dns_its_rendezvous_and_aws_over_https_only():
    allow = network_policy.allow_training(namespace="t-dev", labels=LABELS)
    assert egress_allows(allow, ip="10.100.0.10", port=53, protocol="UDP", dns_pod=True)
    assert egress_allows(allow, ip="10.0.3.7", port=29500, pod_in_namespace=True)
    assert egress_allows(allow, ip="52.218.1.1", port=443)
    assert not egress_allows(allow, ip="52.218.1.1", port=80)
    assert not egress_allows(allow, ip="10.100.0.10", port=53, protocol="UDP")  # DNS elsewhere than kube-dns
    assert not egress_allows(allow, ip="10.0.3.7", port=29500)  # another namespace's pod
    assert not egress_allows(allow, ip="169.254.169.254", port=443)
    assert allow["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_aws_endpoints_can_be_limited_to_the_vpc():
    allow = network_policy.allow_training(namespace="t-dev", labels=LABELS, aws_cidrs=["10.0.0.0/16"])
    assert egress_allows(allow, ip="10.0.200.4", port=443)
    assert not egress_allows(allow, ip="52.218.1.1", port=443)


@pytest.mark.parametrize(("cidrs", "message"), [([], "aws_cidrs is empty"), (["10.0.0.0/33"], "an IPv4 CIDR"), (["s3"], "an IPv4 CIDR")])
def test_bad_cidrs_are_refused_by_name(cidrs, message):
    with pytest.raises(ValueError, match=message):
        network_policy.allow_training(namespace="t-dev", labels=LABELS, aws_cidrs=cidrs)
