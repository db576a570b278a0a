*** Comments ***
Robot Framework suite for Renode (renode-test renode/meter.robot): boot, a metering step and
an IEC 62056-21 readout of the meter firmware on the STM32F4 platform with the ADE7953 model.
UNVERIFIED: the project's machines cannot install Renode; `make renode-test` runs this where
`renode-test` is on the PATH and otherwise says Renode is not installed.

*** Settings ***
Suite Setup       Setup
Suite Teardown    Teardown
Test Teardown     Test Teardown
Resource          ${RENODEKEYWORDS}

*** Variables ***
${RESC}           ${CURDIR}/meter_stm32f4.resc
${REPL_UART}      sysbus.usart2
${OPTICAL_UART}   sysbus.usart6

*** Keywords ***
Start The Meter
    Execute Command           include @${RESC}
    ${repl}=                  Create Terminal Tester    ${REPL_UART}    timeout=120
    ${opt}=                   Create Terminal Tester    ${OPTICAL_UART}    timeout=60
    Set Suite Variable        ${REPL}    ${repl}
    Set Suite Variable        ${OPT}    ${opt}
    Start Emulation

*** Test Cases ***
Boots The Board Module
    Start The Meter
    # boards/stm32.py prints its start-up notes ("boards.stm32: ...") on the REPL UART
    Wait For Line On Uart     boards.stm32:    testerId=${REPL}

Meters A Constant Load
    # 1 kWh takes 30 min at 2 kW: meter 9 virtual seconds of 4 kW (= 10 Wh)
    Execute Command           sysbus.spi1.ade7953 ActivePower 4000
    Execute Command           emulation RunFor "9"
    ${reads}=                 Execute Command    sysbus.spi1.ade7953 EnergyReads
    Should Be True            int(${reads}) >= 5    the metering task read the energy registers

Reads Out Over The Optical Port
    # IEC 62056-21 mode C: request, identification, option select (readout at 9600 Bd)
    Write To Uart             /?!\r\n    testerId=${OPT}
    Wait For Line On Uart     /OMF5OPENMETER1    testerId=${OPT}
    Write To Uart             \x06050\r\n    testerId=${OPT}
    Wait For Line On Uart     1.8.0(    testerId=${OPT}    treatAsRegex=false
    Wait For Line On Uart     !    testerId=${OPT}
