"""Test and lab tooling that ships with ipsecgw but is not the gateway.

The test bed (network namespaces, strongSwan/Libreswan/FreeRADIUS/vpnc
runners), the load generator of the benchmarks and the lab behind
`ipsecgw lab` live here so that the product's own import graph (daemon,
engine, data plane, CLI) never reaches them: nothing outside this package
imports it, except `ipsecgw lab`, which loads it on demand.
"""
